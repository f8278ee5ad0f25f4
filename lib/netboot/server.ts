// Server side of Pi 4 network boot: the dnsmasq configuration (proxy DHCP + TFTP, "Raspberry Pi Boot"), NFS
// /etc/exports lines, and the EEPROM settings the boards need (BOOT_ORDER, TFTP_PREFIX: "Raspberry Pi bootloader
// configuration" in the Raspberry Pi documentation). Text only; the caller writes it.
import { InputError } from '../errors.ts';

export function parseIPv4(ip: string, what = 'IP address'): number[] {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  const parts = m ? m.slice(1).map(Number) : [];
  if (!m || parts.some((p) => p > 255)) throw new InputError(`${what} ${JSON.stringify(ip)} is not an IPv4 address`, 'Write it like 192.168.1.10.');
  return parts;
}

/** The network address of `ip` with a /`prefix` mask. */
export function networkOf(ip: string, prefix: number): string {
  const p = parseIPv4(ip);
  const n = ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const net = (n & mask) >>> 0;
  return [net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join('.');
}

export interface DnsmasqOptions {
  server: string;
  tftpRoot: string;
  /** LAN prefix length (default 24). */
  prefix?: number;
  /** Bind to this interface only. */
  interface?: string;
}

/** A dnsmasq config: no DNS, proxy DHCP on the LAN (the router keeps handing out addresses), TFTP from tftpRoot. */
export function dnsmasqConfig(o: DnsmasqOptions): string {
  parseIPv4(o.server, '--server');
  const prefix = o.prefix ?? 24;
  const net = networkOf(o.server, prefix);
  const mask = networkOf('255.255.255.255', prefix);
  if (/[\s"]/.test(o.tftpRoot)) throw new InputError(`TFTP root ${JSON.stringify(o.tftpRoot)} must not contain spaces or quotes (dnsmasq config)`);
  return [
    '# pi-image netboot: proxy DHCP + TFTP for Raspberry Pi 4 network boot.',
    '# Run: dnsmasq --conf-file=THIS_FILE (or copy it to /etc/dnsmasq.d/).',
    'port=0',
    ...(o.interface ? [`interface=${o.interface}`, 'bind-interfaces'] : []),
    `dhcp-range=${net},proxy,${mask}`,
    'log-dhcp',
    'enable-tftp',
    `tftp-root=${o.tftpRoot}`,
    'pxe-service=0,"Raspberry Pi Boot"',
    '',
  ].join('\n');
}

/** /etc/exports lines: one per node root, exported to that node's address (or the LAN) with root kept as root. */
export function exportsLines(entries: Array<{ path: string; client?: string }>, server: string, prefix = 24): string[] {
  const lan = `${networkOf(server, prefix)}/${prefix}`;
  return entries.map((e) => {
    if (/\s/.test(e.path)) throw new InputError(`NFS root path ${JSON.stringify(e.path)} must not contain spaces`);
    return `${e.path} ${e.client ?? lan}(rw,sync,no_subtree_check,no_root_squash)`;
  });
}

/** The bootloader EEPROM settings for network boot (`rpi-eeprom-config --edit`). */
export function eepromSettings(by: 'serial' | 'mac', server: string): string[] {
  return [
    '[all]',
    'BOOT_ORDER=0xf21',
    `TFTP_PREFIX=${by === 'serial' ? 0 : 2}`,
    `TFTP_IP=${server}`,
  ];
}

/** The per-board TFTP directory name: 8 lowercase hex digits of the serial, or the MAC as dc-a6-32-01-36-c2. */
export function boardDirName(by: 'serial' | 'mac', node: { name: string; serial?: string; mac?: string }): string {
  if (by === 'serial') {
    const s = (node.serial ?? '').toLowerCase().replace(/^0x/, '');
    const short = s.length > 8 ? s.slice(-8) : s;
    if (!/^[0-9a-f]{8}$/.test(short) || (s.length > 8 && !/^[0-9a-f]+$/.test(s))) {
      throw new InputError(
        `node ${node.name}: serial ${JSON.stringify(node.serial ?? '')} is not 8 hex digits`,
        'Set nodes[].serial in the profile (the last 8 hex digits of `cat /proc/cpuinfo | grep Serial`), or use --by mac.',
      );
    }
    return short;
  }
  const m = (node.mac ?? '').toLowerCase().replace(/[:-]/g, '');
  if (!/^[0-9a-f]{12}$/.test(m)) {
    throw new InputError(`node ${node.name}: MAC ${JSON.stringify(node.mac ?? '')} is not a MAC address`, 'Set nodes[].mac like dc:a6:32:01:36:c2.');
  }
  return m.match(/../g)!.join('-');
}
