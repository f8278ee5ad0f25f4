// What a profile's nodes fetch at first boot, as lock requests: the Kubernetes release binaries, crictl, the CNI
// plugins, Heketi, the add-on manifests (Calico, MetalLB, ingress-nginx) and kubeadm's images — each with the
// profile key that names it and the roles that carry it. Images named inside add-on manifests are found when the
// manifests are read (manifestImages). Pure functions of the profile.
import { parseAllDocuments } from 'yaml';
import type { Profile } from '../cluster/profile.ts';
import { kubeadmImages } from '../cluster/kubeadm-images.ts';
import { editManifestImages, manifestImageEdits } from '../cluster/addons.ts';
import type { LockRequest, Role } from './lockfile.ts';
import { splitMember, type FileRequest } from './files.ts';
import { formatImageRef, parseImageRef } from './reference.ts';

const BOTH: Role[] = ['master', 'worker'];
const MASTER: Role[] = ['master'];

export interface ProfileRequests {
  files: (FileRequest & { roles: Role[] })[];
  images: { id: string; key: string; roles: Role[] }[];
  all: LockRequest[];
}

const hex = (s: string | undefined): string | undefined => (s && /^[0-9a-f]{64}$/.test(s) ? s : undefined);
const base = (u: string): string => u.split('#')[0]!.split('?')[0]!.split('/').pop() || 'file';

export function profileRequests(p: Profile): ProfileRequests {
  const k = p.kubernetes;
  const files: ProfileRequests['files'] = [];
  const images: ProfileRequests['images'] = [];
  const file = (id: string, key: string, url: string, kind: FileRequest['kind'], roles: Role[], sha?: string) => {
    const { url: u, member } = splitMember(url);
    files.push({ id, key, url: u, ...(member ? { member } : {}), kind, roles, ...(hex(sha) ? { expected: hex(sha) } : {}) });
  };
  if (k.enabled) {
    if (k.install === 'binaries') {
      const baseUrl = k.binaries.baseUrl.replaceAll('{version}', k.version);
      for (const b of ['kubeadm', 'kubelet', 'kubectl'] as const) file(b, `kubernetes.binaries.baseUrl`, `${baseUrl}/${b}`, 'binary', BOTH, k.binaries.sha256[b]);
      file('crictl', 'kubernetes.binaries.crictl.url', k.binaries.crictl.url, 'archive', BOTH, k.binaries.crictl.sha256);
      file('cni-plugins', 'kubernetes.binaries.cni.url', k.binaries.cni.url, 'archive', BOTH, k.binaries.cni.sha256);
    }
    if (k.calico.enabled) file('calico/' + base(k.calico.manifest.includes('#') ? k.calico.manifest.split('#')[1]! : k.calico.manifest), 'kubernetes.calico.manifest', k.calico.manifest, 'manifest', MASTER, k.calico.sha256);
    if (k.metallb.enabled) k.metallb.manifests.forEach((u, i) => file(`metallb/${base(u)}`, `kubernetes.metallb.manifests[${i}]`, u, 'manifest', MASTER));
    if (k.ingressNginx.enabled) k.ingressNginx.manifests.forEach((u, i) => file(`ingress-nginx/${base(u)}`, `kubernetes.ingressNginx.manifests[${i}]`, u, 'manifest', MASTER));
    // The image the ingress manifests are edited to (addons.ts) is a request of its own, so changing the key makes
    // the lock stale by name; the manifests' reading finds the same image again.
    if (k.ingressNginx.enabled && k.ingressNginx.image) images.push({ id: formatImageRef(parseImageRef(k.ingressNginx.image)), key: 'kubernetes.ingressNginx.image', roles: BOTH });
    for (const img of kubeadmImages(k.version, k.imageRepository)) images.push({ id: formatImageRef(parseImageRef(img.ref)), key: 'kubernetes.imageRepository', roles: img.controlPlane ? MASTER : BOTH });
  }
  const g = p.glusterfs;
  if (g.enabled && g.heketi.enabled && k.enabled) file('heketi', 'glusterfs.heketi.download.url', g.heketi.download.url, 'archive', MASTER, g.heketi.download.sha256);
  p.bundle.files.forEach((f, i) => file(`bundle/${base(f.url)}`, `bundle.files[${i}].url`, f.url, 'data', BOTH, f.sha256));
  p.bundle.images.forEach((ref, i) => images.push({ id: formatImageRef(parseImageRef(ref)), key: `bundle.images[${i}]`, roles: BOTH }));
  const all: LockRequest[] = [
    ...files.map((f) => ({ id: f.id, key: f.key, input: f.member ? `${f.url}#${f.member}` : f.url, kind: 'file' as const, roles: f.roles })),
    ...images.map((i) => ({ id: i.id, key: i.key, input: i.id, kind: 'image' as const, roles: i.roles })),
  ];
  return { files, images, all };
}

/** The images a locked add-on manifest makes a node run: its `image:` values after pi-image's own edits
 *  (addons.ts), each with the profile key to change (the edit's key for an edited one, else the manifest's). */
export function addonManifestImages(p: Profile, manifestKey: string, text: string): { id: string; key: string }[] {
  const edits = manifestImageEdits(p, manifestKey);
  const keys = new Map(edits.map((e) => [formatImageRef(parseImageRef(e.to)), e.key]));
  return manifestImages(editManifestImages(text, edits)).map((id) => ({ id, key: keys.get(id) ?? manifestKey }));
}

/** Every `image:` value in a manifest's YAML documents, normalised, in order of first appearance. */
export function manifestImages(text: string): string[] {
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [key, val] of Object.entries(v)) {
        if (key === 'image' && typeof val === 'string' && val.trim()) out.add(formatImageRef(parseImageRef(val)));
        else walk(val);
      }
    }
  };
  for (const d of parseAllDocuments(text) as unknown as { toJS(): unknown }[]) walk(d.toJS());
  return [...out];
}
