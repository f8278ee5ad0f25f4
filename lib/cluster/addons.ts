// Add-on configuration the master applies on first boot, as plain objects: the MetalLB address pool, the
// GlusterFS topology for Heketi, Heketi's own config and the GlusterFS StorageClass.
import type { Profile } from './profile.ts';
import type { Secrets } from './secrets.ts';

type Obj = Record<string, unknown>;

export function masterAddress(p: Profile): string {
  const m = p.nodes.find((n) => n.role === 'master') ?? p.nodes[0]!;
  return m.address === 'dhcp' ? m.name : m.address.ip;
}

/** MetalLB layer-2 pool: a ConfigMap (MetalLB ≤ 0.12) or IPAddressPool + L2Advertisement (≥ 0.13). */
export function metallbConfig(p: Profile): Obj[] {
  const addresses = p.kubernetes.metallb.addresses;
  if (p.kubernetes.metallb.config === 'crd') {
    return [
      { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'default', namespace: 'metallb-system' }, spec: { addresses } },
      { apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: { name: 'default', namespace: 'metallb-system' }, spec: { ipAddressPools: ['default'] } },
    ];
  }
  const config = ['address-pools:', '- name: default', '  protocol: layer2', '  addresses:', ...addresses.map((a) => `  - ${a}`)].join('\n') + '\n';
  return [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'metallb-system', name: 'config' }, data: { config } }];
}

/** Heketi topology.json: every node, managed by name, storage by address, one raw device each. */
export function glusterTopology(p: Profile): Obj {
  return {
    clusters: [
      {
        nodes: p.nodes.map((n) => ({
          node: { hostnames: { manage: [n.name], storage: [n.address === 'dhcp' ? n.name : n.address.ip] }, zone: 1 },
          devices: [{ name: p.ssd.brickDevice, destroydata: false }],
        })),
      },
    ],
  };
}

/** /etc/heketi/heketi.json: SSH executor as root with the cluster's Heketi key, JWT auth with the admin key. */
export function heketiConfig(p: Profile, secrets: Pick<Secrets, 'heketiAdminKey'>): Obj {
  return {
    port: String(p.glusterfs.heketi.port),
    use_auth: true,
    jwt: { admin: { key: secrets.heketiAdminKey }, user: { key: secrets.heketiAdminKey } },
    glusterfs: {
      executor: 'ssh',
      sshexec: { keyfile: '/etc/heketi/heketi_key', user: 'root', port: '22', fstab: '/etc/fstab' },
      db: '/var/lib/heketi/heketi.db',
      loglevel: 'info',
    },
  };
}

/** The heketi Secret and the GlusterFS StorageClass (in-tree provisioner, Kubernetes < 1.26). */
export function storageClass(p: Profile, secrets: Pick<Secrets, 'heketiAdminKey'>): Obj[] {
  const sc = p.glusterfs.storageClass;
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'heketi-secret', namespace: 'default' },
      type: 'kubernetes.io/glusterfs',
      data: { key: Buffer.from(secrets.heketiAdminKey).toString('base64') },
    },
    {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: sc.name, ...(sc.default ? { annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } } : {}) },
      provisioner: 'kubernetes.io/glusterfs',
      parameters: {
        resturl: `http://${masterAddress(p)}:${p.glusterfs.heketi.port}`,
        restauthenabled: 'true',
        restuser: 'admin',
        secretNamespace: 'default',
        secretName: 'heketi-secret',
        volumetype: `replicate:${p.glusterfs.replica}`,
      },
      allowVolumeExpansion: true,
    },
  ];
}
