// network-config (netplan v2, passed through by cloud-init): a static address or DHCP on the node's interface,
// matched by MAC when one is given. Plain input: the cluster layer's ResolvedNode is one such value.

/** What the network-config of one node is made from. */
export interface NetworkInput {
  /** Interface name, e.g. eth0 (the name set when `mac` matches). */
  interface: string;
  mac?: string;
  address: 'dhcp' | { ip: string; prefix: number };
  gateway?: string;
  dns: string[];
  search: string[];
}

export function networkConfig(node: NetworkInput): Record<string, unknown> {
  const eth: Record<string, unknown> = {};
  if (node.mac) {
    eth.match = { macaddress: node.mac };
    eth['set-name'] = node.interface;
  }
  if (node.address === 'dhcp') {
    eth.dhcp4 = true;
  } else {
    eth.dhcp4 = false;
    eth.addresses = [`${node.address.ip}/${node.address.prefix}`];
    // `to: 0.0.0.0/0` rather than `default` or gateway4: understood by netplan from 19.10 to 24.04 without warnings.
    if (node.gateway) eth.routes = [{ to: '0.0.0.0/0', via: node.gateway }];
  }
  if (node.dns.length > 0 || node.search.length > 0) {
    eth.nameservers = { ...(node.dns.length ? { addresses: node.dns } : {}), ...(node.search.length ? { search: node.search } : {}) };
  }
  return { version: 2, ethernets: { [node.interface]: eth } };
}
