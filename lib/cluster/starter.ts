// The commented starter profile `pi-image init` writes, from a few answers. The text is checked with the
// profile parser before anyone sees it, so init never writes a profile that would not load.
import { InputError } from '../errors.ts';
import { formatIPv4, parseCidr } from './net.ts';
import { parseProfile } from './profile.ts';
import { RFC1123_LABEL } from './schema.ts';
import type { StarterAnswers } from './starter-defaults.ts';

export { STARTER_DEFAULTS, type StarterAnswers } from './starter-defaults.ts';

const q = (s: string) => JSON.stringify(s);

export function starterProfile(a: StarterAnswers): string {
  if (!RFC1123_LABEL.test(a.name)) throw new InputError(`cluster name "${a.name}" must be an RFC 1123 label (a-z, 0-9, -)`);
  if (!Number.isInteger(a.nodes) || a.nodes < 1 || a.nodes > 64) throw new InputError(`--nodes ${a.nodes}: give 1 to 64 nodes`);
  const c = parseCidr(a.address);
  if (!c) throw new InputError(`--address ${a.address}: give the first node's address with its prefix, like 10.0.0.11/24`);
  const addr = (i: number) => `${formatIPv4(c.address + i)}/${c.prefix}`;
  const lan = `${formatIPv4(c.network)}/${c.prefix}`;
  const eoan = a.release === 'eoan';
  const poolStart = (c.network + 200) >>> 0;
  const pool = c.prefix <= 24 ? `${formatIPv4(poolStart)}-${formatIPv4(poolStart + 20)}` : '';
  const lines = [
    `# pi-image cluster profile — every key and its default: docs/profile.md`,
    `# Check it with \`pi-image seed --all --out /tmp/seed\`, build with \`pi-image build --all\`.`,
    `apiVersion: pi-image/v1`,
    ``,
    `cluster:`,
    `  name: ${a.name}               # names the secrets directory (.pi-image-state/${a.name}/) and the disk ids`,
    `  domain: home.arpa           # each node's fqdn is <name>.home.arpa`,
    ``,
    eoan ? `image: ubuntu-19.10.1-raspi  # catalog id, URL or path of the base image` : `image: ubuntu-24.04.3-raspi`,
    `os:`,
    eoan ? `  version: 19.10.1\n  codename: eoan             # end of life: apt uses old-releases.ubuntu.com` : `  version: 24.04.3\n  codename: noble`,
    ``,
    `defaults:                    # for every node unless the node says otherwise`,
    `  interface: eth0`,
    `  gateway: ${a.gateway}`,
    `  dns: [${a.dns.join(', ')}]`,
    ``,
    `nodes:                       # the first is the Kubernetes master; add mac: or serial: to pin a board`,
    ...Array.from({ length: a.nodes }, (_, i) => `  - { name: ${a.prefix}${i + 1}, role: ${i === 0 ? 'master' : 'worker'}, address: ${addr(i)} }`),
    ``,
    `ssd:`,
    `  quirks: ['174c:55aa:u']     # USB bridge ids to run without UAS (ASMedia ASM1051/1053/1153)`,
    `  rootSize: 32GiB             # root partition; the rest of the disk is the GlusterFS brick`,
    `  brick: true`,
    ``,
    `users:`,
    `  - name: ${a.user}`,
    `    sudo: true`,
    a.sshKeys.length ? `    sshKeys:\n${a.sshKeys.map((k) => `      - ${q(k)}`).join('\n')}` : `    sshKeys: []               # add your key: ["ssh-ed25519 AAAA… you@laptop"]; password login stays off`,
    ``,
    `timezone: Etc/UTC`,
    `locale: en_US.UTF-8`,
    ``,
    `kubernetes:`,
    `  enabled: true`,
    eoan ? `  version: 1.17.17             # release binaries from dl.k8s.io (pkgs.k8s.io starts at 1.24)` : `  version: 1.33.4              # from pkgs.k8s.io`,
    `  podCIDR: 10.244.0.0/16       # must not overlap your LAN (${lan})`,
    `  serviceCIDR: 10.96.0.0/12`,
    ...(eoan
      ? []
      : [
          `  calico: { manifest: https://raw.githubusercontent.com/projectcalico/calico/v3.30.2/manifests/calico.yaml }`,
          `  ingressNginx: { manifests: [https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.13.0/deploy/static/provider/baremetal/deploy.yaml] }`,
        ]),
    `  metallb:`,
    pool ? `    enabled: true\n    addresses: [${pool}]   # LoadBalancer IPs: free addresses of your LAN` : `    enabled: false             # give addresses: [a.b.c.d-e.f.g.h] to enable`,
    ...(eoan ? [] : [`    config: crd\n    manifests: [https://raw.githubusercontent.com/metallb/metallb/v0.15.2/config/manifests/metallb-native.yaml]`]),
    ``,
    `glusterfs:`,
    eoan && a.nodes >= 1 ? `  enabled: true\n  replica: ${Math.min(3, a.nodes)}` : `  enabled: false              # the in-tree GlusterFS provisioner is gone from Kubernetes ≥ 1.26`,
    ``,
    `# files: [{ path: /etc/motd, content: "hello\\n", permissions: "0644" }]   # extra files on every node`,
    `# runcmd: ["echo done"]                                                   # extra commands, run last`,
    ``,
  ];
  const text = lines.join('\n');
  parseProfile(text, 'starter profile');
  return text;
}
