// Test helper for the lockfile: everything a profile's first boot fetches, served on 127.0.0.1 — a real registry
// (bearer-token auth) holding multi-platform images for kubeadm and the add-ons plus an amd64-only one, and a file
// server with release binaries (some with a published .sha256), release archives made by the real tar (one holds
// the Calico manifest), an HTML page where YAML is expected, a 404 and a redirect loop. Plus a profile using them.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, makeOciLayout, pushImage, type Registry } from './registry.ts';

/** A file that starts like an arm64 (or other) ELF executable. */
export function fakeElf(machine: number, body: string): Buffer {
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = 2; // 64-bit
  h[5] = 1; // little endian
  h[6] = 1;
  h.writeUInt16LE(2, 16); // ET_EXEC
  h.writeUInt16LE(machine, 18);
  return Buffer.concat([h, Buffer.from(body)]);
}
export const ARM64 = 0xb7;
export const AMD64 = 0x3e;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface LockWorld {
  registry: Registry;
  files: Server;
  base: string;
  /** Pushed manifests: reference → arm64 manifest digest. */
  pushed: Record<string, string>;
  /** sha256 of served files by path. */
  sums: Record<string, string>;
  /** Requests the file server saw, by path. */
  hits: Map<string, number>;
  close(): Promise<void>;
}

const K8S = ['kube-apiserver:v1.17.17', 'kube-controller-manager:v1.17.17', 'kube-scheduler:v1.17.17', 'etcd:3.4.3-0', 'kube-proxy:v1.17.17', 'pause:3.1', 'coredns:1.6.5'];

function tgz(dir: string, name: string, files: Record<string, string | Buffer>): Buffer {
  const root = join(dir, `tree-${name}`);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), c);
  }
  const top = [...new Set(Object.keys(files).map((p) => p.split('/')[0]!))].sort();
  execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '-C', root, '-czf', join(dir, `${name}.tgz`), ...top]);
  return readFileSync(join(dir, `${name}.tgz`));
}

/** `bigBytes`: the arm64 add-on images (Calico node and CNI, MetalLB) get layers of that many random bytes (benchmarks). */
export async function startLockWorld(dir: string, opts: { layerBytes?: number; bigBytes?: number } = {}): Promise<LockWorld> {
  mkdirSync(dir, { recursive: true });
  const registry = await startRegistry(join(dir, 'registry'), { auth: true });
  const host = registry.host;
  const pushed: Record<string, string> = {};
  const push = async (name: string, tag: string, arches: string[], big = false) => {
    const img = makeOciLayout(join(dir, 'oci', `${name.replace(/\//g, '_')}-${tag}`), tag, arches, { layerBytes: opts.layerBytes, randomBytes: big ? opts.bigBytes : undefined });
    await pushImage(img, registry, name);
    pushed[`${host}/${name}:${tag}`] = img.manifests.arm64 ?? img.manifests[arches[0]!]!;
  };
  for (const t of K8S) {
    const [n, tag] = t.split(':');
    await push(`k8s/${n}`, tag!, ['amd64', 'arm64']);
  }
  await push('calico/node', 'v3.13.4', ['amd64', 'arm64'], true);
  await push('calico/cni', 'v3.13.4', ['arm64', 'amd64'], true);
  await push('metallb/speaker', 'v0.9.3', ['amd64', 'arm64'], true);
  await push('ingress/nginx-ingress-controller', '0.30.0', ['amd64']);

  const calico = [
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: calico-config, namespace: kube-system}\ndata: {veth_mtu: "1440"}',
    `apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: calico-node, namespace: kube-system}\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: install-cni\n          image: ${host}/calico/cni:v3.13.4\n      containers:\n        - name: calico-node\n          image: ${host}/calico/node:v3.13.4\n          env:\n            # - name: CALICO_IPV4POOL_CIDR\n            #   value: "192.168.0.0/16"\n`,
  ].join('\n---\n');
  const served: Record<string, Buffer> = {};
  const bin = (name: string, machine = ARM64) => fakeElf(machine, `${name} release binary\n`.repeat(50));
  served['/k8s/v1.17.17/kubeadm'] = bin('kubeadm');
  served['/k8s/v1.17.17/kubelet'] = bin('kubelet');
  served['/k8s/v1.17.17/kubectl'] = bin('kubectl'); // no .sha256: pinned at lock
  served['/k8s/v1.17.17/kubeadm.sha256'] = Buffer.from(`${sha(served['/k8s/v1.17.17/kubeadm'])}  kubeadm\n`);
  served['/k8s/v1.17.17/kubelet.sha256'] = Buffer.from(sha(served['/k8s/v1.17.17/kubelet']));
  served['/badsum/v1.17.17/kubeadm'] = bin('kubeadm');
  served['/badsum/v1.17.17/kubeadm.sha256'] = Buffer.from(`${'0'.repeat(64)}  kubeadm\n`);
  served['/badsum/v1.17.17/kubelet'] = bin('kubelet');
  served['/badsum/v1.17.17/kubectl'] = bin('kubectl');
  served['/amd64/v1.17.17/kubeadm'] = bin('kubeadm', AMD64);
  served['/amd64/v1.17.17/kubelet'] = bin('kubelet', AMD64);
  served['/amd64/v1.17.17/kubectl'] = bin('kubectl', AMD64);
  served['/crictl-v1.17.0-linux-arm64.tar.gz'] = tgz(dir, 'crictl', { crictl: bin('crictl') });
  served['/cni-plugins-linux-arm64-v0.8.5.tgz'] = tgz(dir, 'cni', { 'bridge': bin('bridge'), 'loopback': bin('loopback') });
  served['/cni-plugins-linux-arm64-v0.8.5.tgz.sha256'] = Buffer.from(`${sha(served['/cni-plugins-linux-arm64-v0.8.5.tgz'])}  cni-plugins-linux-arm64-v0.8.5.tgz\n`);
  served['/heketi-v10.4.0.linux.arm64.tar.gz'] = tgz(dir, 'heketi', { 'heketi/heketi': bin('heketi'), 'heketi/heketi-cli': bin('heketi-cli') });
  served['/calico/release-v3.13.4.tgz'] = tgz(dir, 'release-v3.13.4', { 'release-v3.13.4/k8s-manifests/calico.yaml': calico, 'release-v3.13.4/README': 'Calico\n' });
  served['/metallb/metallb.yaml'] = Buffer.from(`apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: speaker, namespace: metallb-system}\nspec:\n  template:\n    spec:\n      containers:\n        - name: speaker\n          image: ${host}/metallb/speaker:v0.9.3\n`);
  served['/metallb/namespace.yaml'] = Buffer.from('apiVersion: v1\nkind: Namespace\nmetadata: {name: metallb-system}\n');
  served['/ingress/mandatory.yaml'] = Buffer.from(`apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: nginx-ingress-controller}\nspec:\n  template:\n    spec:\n      containers:\n        - name: nginx-ingress-controller\n          image: ${host}/ingress/nginx-ingress-controller:0.30.0\n`);
  served['/docs/v3.13/manifests/calico.yaml'] = Buffer.from('<!DOCTYPE html>\n<html><head><title>Calico Documentation</title></head><body>Page moved</body></html>\n');
  const hits = new Map<string, number>();
  const files = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/loop') {
      res.writeHead(302, { location: '/loop' });
      res.end();
      return;
    }
    const body = served[path];
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'content-type': path.endsWith('.yaml') && body[0] === 0x3c ? 'text/html' : 'application/octet-stream' });
    res.end(body);
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(files.address() as { port: number }).port}`;
  const sums = Object.fromEntries(Object.entries(served).map(([p, b]) => [p, sha(b)]));
  return {
    registry,
    files,
    base,
    pushed,
    sums,
    hits,
    close: async () => {
      await new Promise<void>((r) => files.close(() => r()));
      await registry.stop();
    },
  };
}

/** A two-node profile whose every first-boot download is in the world; `edit` changes the text. */
export function lockProfile(w: LockWorld, image: string, edit: (t: string) => string = (t) => t): string {
  const text = `apiVersion: pi-image/v1
cluster: { name: locktest }
image: ${image}
nodes:
  - { name: node1, role: master, address: 10.0.0.11/24 }
  - { name: node2, role: worker, address: 10.0.0.12/24 }
defaults: { gateway: 10.0.0.1 }
ssd: { rootSize: 4GiB }
kubernetes:
  version: 1.17.17
  imageRepository: ${w.registry.host}/k8s
  binaries:
    baseUrl: ${w.base}/k8s/v{version}
    crictl: { url: ${w.base}/crictl-v1.17.0-linux-arm64.tar.gz }
    cni: { url: ${w.base}/cni-plugins-linux-arm64-v0.8.5.tgz }
  calico:
    manifest: ${w.base}/calico/release-v3.13.4.tgz#release-v3.13.4/k8s-manifests/calico.yaml
  metallb:
    manifests: [${w.base}/metallb/namespace.yaml, ${w.base}/metallb/metallb.yaml]
    addresses: [10.0.0.200-10.0.0.250]
  ingressNginx:
    enabled: false
    manifests: [${w.base}/ingress/mandatory.yaml]
glusterfs:
  replica: 2
  heketi:
    download: { url: ${w.base}/heketi-v10.4.0.linux.arm64.tar.gz }
`;
  return edit(text);
}
