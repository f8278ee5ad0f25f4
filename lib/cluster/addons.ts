// Add-on configuration the master applies on first boot, as plain objects:
// - the MetalLB address pool;
// - the GlusterFS topology for Heketi, Heketi's own config and the GlusterFS StorageClass.
// Also pi-image's edits to the add-on manifests' images (the ingress-nginx controller for the base image's
// platform): a pure text edit, which the lock reads before it resolves the manifests' images.
import type { Profile } from './profile.ts';
import type { Secrets } from './secrets.ts';

type Obj = Record<string, unknown>;

export function masterAddress(p: Profile): string {
  const m = p.nodes.find((n) => n.role === 'master') ?? p.nodes[0]!;
  return m.address === 'dhcp' ? m.name : m.address.ip;
}

/** An image pi-image puts in place of the one a manifest names, with the profile key that says so. */
export interface ManifestImageEdit {
  /** Which `image:` values it replaces (the reference as written in the manifest). */
  matches: (ref: string) => boolean;
  to: string;
  key: string;
}

/** The ingress-nginx controller, as its manifests name it (quay.io/…/nginx-ingress-controller[-amd64], or the later
 *  registry.k8s.io/ingress-nginx/controller). */
const INGRESS_CONTROLLER = /(^|\/)(nginx-ingress-controller(-amd64)?|ingress-nginx\/controller)(:[^@\s]*)?(@sha256:[0-9a-f]{64})?$/;

/** pi-image's image edits for the manifest a profile key names (e.g. `kubernetes.ingressNginx.manifests[0]`). */
export function manifestImageEdits(p: Profile, manifestKey: string): ManifestImageEdit[] {
  const to = p.kubernetes.ingressNginx.image;
  if (manifestKey.startsWith('kubernetes.ingressNginx.manifests[') && to) {
    return [{ matches: (ref) => INGRESS_CONTROLLER.test(ref) && ref !== to, to, key: 'kubernetes.ingressNginx.image' }];
  }
  return [];
}

/** A manifest's text with each `image:` value an edit matches replaced (quotes and comments kept); pure. */
export function editManifestImages(text: string, edits: ManifestImageEdit[]): string {
  if (edits.length === 0) return text;
  return text.replace(/^(\s*(?:-\s+)?image:\s*)(["']?)([^"'\s#]+)\2/gm, (line, head: string, q: string, ref: string) => {
    const e = edits.find((x) => x.matches(ref));
    return e ? `${head}${q}${e.to}${q}` : line;
  });
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
