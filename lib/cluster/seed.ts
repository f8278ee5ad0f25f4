// One node's NoCloud seed: user-data (#cloud-config), meta-data and network-config, composed from the profile,
// the secrets, kubeadm and the add-ons (the cluster layer owns seeds; lib/cloud-init/ only formats text).
// Invariants:
// - Deterministic: the same profile and secrets give the same bytes.
// - User values reach the node only as YAML scalars (quoted by the YAML 1.1 writer) or as single-quoted shell
//   words in /etc/pi-image/cluster.env; every runcmd entry pi-image writes is a fixed argv list.
// - The CA key, the Heketi and MetalLB secrets go only into the master's seed.
import { createHash } from 'node:crypto';
import { InputError } from '../errors.ts';
import { findNode, type Profile, type ResolvedNode } from './profile.ts';
import type { Secrets } from './secrets.ts';
import { aptPackagesFor } from './packages.ts';
import { kubeadmInitConfig, kubeadmJoinConfig } from './kubeadm.ts';
import { glusterTopology, heketiConfig, masterAddress, metallbConfig, storageClass } from './addons.ts';
import { envFile, template, yaml11, yamlDocs } from '../cloud-init/text.ts';
import { networkConfig } from '../cloud-init/network.ts';
import { releaseFacts } from '../source/catalog.ts';

export interface Seed {
  'user-data': string;
  'meta-data': string;
  'network-config': string;
  instanceId: string;
  /** Paths of the write_files entries that hold secrets (the CA key, kubeadm configs, Heketi keys …). */
  secretFiles: string[];
}

/** Kernel modules every node loads (Kubernetes networking, GlusterFS/LVM thin pools). */
export const MODULES = ['br_netfilter', 'overlay', 'dm_thin_pool', 'dm_snapshot', 'dm_mirror'];
export const SYSCTLS: Record<string, string> = {
  'net.bridge.bridge-nf-call-iptables': '1',
  'net.bridge.bridge-nf-call-ip6tables': '1',
  'net.ipv4.ip_forward': '1',
};
const SCRIPT = '/usr/local/lib/pi-image/firstboot.sh';

interface WriteFile {
  path: string;
  content: string;
  permissions: string;
  owner?: string;
  /** Holds a secret: left out of the scrubbed seed. Not written to YAML. */
  secret?: boolean;
}

/** What the build knows about the node's bundle that the profile alone does not say. */
export interface SeedOptions {
  /** The node's bundle carries .debs (the lock pinned OS packages for its role). */
  bundledPackages?: boolean;
}

/** The steps `firstboot.sh` runs on this node, in order. */
export function firstbootSteps(p: Profile, node: ResolvedNode, o: SeedOptions = {}): string[] {
  const k8s = p.kubernetes.enabled;
  const g = p.glusterfs.enabled;
  const master = node.role === 'master';
  // base first: it enables what a reboot needs before any step that can fail.
  const steps: string[] = ['base'];
  // Then the bundle: it frees SSD partition 2 for the brick; a node built without a lock skips it in a line.
  const carried = p.bundle.files.length > 0 || p.bundle.images.length > 0 || o.bundledPackages === true;
  if (k8s || carried) steps.push('bundle');
  if (p.ssd.brick) steps.push('brick');
  const packages = k8s || g || p.apt.packages.length > 0;
  const local: string[] = [];
  const later: string[] = [];
  // Packages from the bundle (and the runtime and images that need only them) install with no network and need no
  // true clock: they come before `clock`. From the network they need it (apt's Release dates, TLS): after it.
  const before = o.bundledPackages === true && packages ? local : later;
  if (packages) before.push('packages');
  if (k8s) before.push('runtime', 'images');
  else if (p.bundle.images.length > 0) (packages ? before : local).push('images');
  if (k8s) later.push('kubernetes');
  if (g) later.push('gluster');
  if (k8s) later.push(master ? 'master' : 'join');
  if (k8s && master) later.push('addons');
  if (g && p.glusterfs.heketi.enabled && master && k8s) later.push('heketi');
  // Everything after `clock` needs a true time: firstboot.sh puts it off when NTP has not synchronised in time.
  steps.push(...local);
  if (packages && later.length > 0) steps.push('clock');
  steps.push(...later);
  return steps;
}

function clusterEnv(p: Profile, node: ResolvedNode, tokenId: string, steps: string[]): string {
  const k = p.kubernetes;
  const g = p.glusterfs;
  const [maj, min] = k.version.split('.');
  const master = node.role === 'master';
  const heketi = g.enabled && g.heketi.enabled;
  return envFile(
    {
      NODE_NAME: node.name,
      ROLE: node.role,
      STEPS: steps.join(' '),
      CLOCK_WAIT: p.ntp.waitSeconds,
      BRICK: p.ssd.brick,
      BRICK_DEVICE: p.ssd.brickDevice,
      ROOT_SECTORS: p.rootSizeBytes / 512,
      LEGACY_IPTABLES: releaseFacts(p.os.codename).legacyIptables,
      KUBERNETES: k.enabled,
      K8S_VERSION: k.version,
      K8S_INSTALL: k.install,
      RUNTIME: k.runtime,
      K8S_BIN_URL: k.binaries.baseUrl.replaceAll('{version}', k.version),
      SHA256_kubeadm: k.binaries.sha256.kubeadm,
      SHA256_kubelet: k.binaries.sha256.kubelet,
      SHA256_kubectl: k.binaries.sha256.kubectl,
      CRICTL_URL: k.binaries.crictl.url,
      CRICTL_SHA256: k.binaries.crictl.sha256,
      CNI_URL: k.binaries.cni.url,
      CNI_SHA256: k.binaries.cni.sha256,
      K8S_APT_REPO: k.aptRepo.replaceAll('{minor}', `v${maj}.${min}`).replaceAll('{version}', k.version),
      API_ENDPOINT: k.apiEndpoint,
      TOKEN_ID: master && k.enabled ? tokenId : '',
      TOKEN_TTL: k.tokenTTL,
      NODE_NAMES: p.nodes.map((n) => n.name).join(' '),
      POD_CIDR: k.podCIDR,
      CALICO: master && k.calico.enabled,
      CALICO_URL: k.calico.manifest,
      CALICO_SHA256: k.calico.sha256 ?? '',
      METALLB: master && k.metallb.enabled,
      METALLB_URLS: k.metallb.manifests.join(' '),
      INGRESS: master && k.ingressNginx.enabled,
      INGRESS_URLS: k.ingressNginx.manifests.join(' '),
      INGRESS_IMAGE: k.ingressNginx.image ?? '',
      GLUSTER: g.enabled,
      HEKETI: heketi,
      HEKETI_URL: g.heketi.download.url,
      HEKETI_SHA256: g.heketi.download.sha256,
      HEKETI_PORT: g.heketi.port,
      STORAGECLASS: master && heketi && g.storageClass.enabled && k.enabled,
      MASTER_IP: masterAddress(p),
      NODE_IPS: p.nodes.map((n) => (n.address === 'dhcp' ? n.name : n.address.ip)).join(' '),
      ADMIN_USERS: p.users.filter((u) => u.sudo).map((u) => u.name).join(' '),
      PACKAGES: aptPackagesFor(p, node.role).join(' '),
    },
    `pi-image: configuration of ${node.name} in cluster ${p.cluster.name}, read by ${SCRIPT}`,
  );
}

function hostsFile(p: Profile): string {
  const lines = ['127.0.0.1 localhost', '::1 localhost ip6-localhost ip6-loopback', 'ff02::1 ip6-allnodes', 'ff02::2 ip6-allrouters', ''];
  for (const n of p.nodes) if (n.address !== 'dhcp') lines.push(`${n.address.ip} ${n.fqdn} ${n.name}`);
  return lines.join('\n') + '\n';
}

function writeFiles(p: Profile, node: ResolvedNode, s: Secrets, steps: string[]): WriteFile[] {
  const k = p.kubernetes;
  const g = p.glusterfs;
  const master = node.role === 'master';
  const heketi = g.enabled && g.heketi.enabled;
  const files: WriteFile[] = [
    { path: '/etc/hosts', content: hostsFile(p), permissions: '0644' },
    // The token's id (its first six characters) is public: `kubeadm token delete` names the token by it.
    { path: '/etc/pi-image/cluster.env', content: clusterEnv(p, node, s.token.split('.')[0]!, steps), permissions: '0644' },
    { path: SCRIPT, content: template('firstboot.sh'), permissions: '0755' },
    { path: '/usr/local/lib/pi-image/bundle.sh', content: template('bundle.sh'), permissions: '0755' },
    { path: '/usr/local/lib/pi-image/offline-apt.sh', content: template('offline-apt.sh'), permissions: '0644' },
    { path: '/usr/local/sbin/pi-image-update-vmlinux', content: template('update-vmlinux.sh'), permissions: '0755' },
    { path: '/etc/apt/apt.conf.d/99-pi-image-vmlinux', content: template('99-pi-image-vmlinux'), permissions: '0644' },
    { path: '/etc/modules-load.d/pi-image.conf', content: `# pi-image: Kubernetes networking and GlusterFS thin pools\n${MODULES.join('\n')}\n`, permissions: '0644' },
    {
      path: '/etc/sysctl.d/99-pi-image.conf',
      content: `# pi-image: Kubernetes networking\n${Object.entries(SYSCTLS).map(([a, b]) => `${a} = ${b}`).join('\n')}\n`,
      permissions: '0644',
    },
  ];
  if (k.enabled && k.install === 'binaries') {
    files.push({ path: '/etc/systemd/system/kubelet.service', content: template('kubelet.service'), permissions: '0644' });
    files.push({ path: '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf', content: template('10-kubeadm.conf'), permissions: '0644' });
  }
  if (steps.includes('clock')) {
    files.push({ path: '/etc/systemd/system/pi-image-resume.service', content: template('pi-image-resume.service'), permissions: '0644' });
  }
  if (k.enabled && master) {
    files.push({ path: '/etc/systemd/system/pi-image-token-cleanup.service', content: template('pi-image-token-cleanup.service'), permissions: '0644' });
    files.push({ path: '/etc/systemd/system/pi-image-token-cleanup.timer', content: template('pi-image-token-cleanup.timer'), permissions: '0644' });
  }
  if (p.bundle.files.length > 0) {
    const rows = p.bundle.files.map((f) => `${f.url}\t${f.path}\t${f.permissions}`);
    files.push({ path: '/etc/pi-image/bundle-place.tsv', content: `# url, path, mode: placed from the bundle by bundle.sh\n${rows.join('\n')}\n`, permissions: '0644' });
  }
  if (heketi) files.push({ path: '/etc/pi-image/heketi-ssh-key.pub', content: s.heketiSshPublicKey + '\n', permissions: '0644' });
  if (k.enabled && master) {
    files.push({ path: '/etc/kubernetes/pki/ca.crt', content: s.caCert, permissions: '0644' });
    files.push({ path: '/etc/kubernetes/pki/ca.key', content: s.caKey, permissions: '0600', secret: true });
    files.push({ path: '/etc/pi-image/kubeadm.yaml', content: yamlDocs(kubeadmInitConfig(p, node, s)), permissions: '0600', secret: true });
    if (k.metallb.enabled) {
      files.push({ path: '/etc/pi-image/metallb-config.yaml', content: yamlDocs(metallbConfig(p)), permissions: '0644' });
      files.push({ path: '/etc/pi-image/secrets/metallb-memberlist-key', content: s.metallbMemberlistKey, permissions: '0600', secret: true });
    }
  }
  if (k.enabled && !master) {
    files.push({ path: '/etc/pi-image/kubeadm-join.yaml', content: yamlDocs(kubeadmJoinConfig(p, node, s)), permissions: '0600', secret: true });
  }
  if (heketi && master) {
    files.push({ path: '/etc/systemd/system/heketi.service', content: template('heketi.service'), permissions: '0644' });
    files.push({ path: '/etc/pi-image/topology.json', content: JSON.stringify(glusterTopology(p), null, 2) + '\n', permissions: '0644' });
    files.push({ path: '/etc/pi-image/heketi.json', content: JSON.stringify(heketiConfig(p, s), null, 2) + '\n', permissions: '0600', secret: true });
    files.push({ path: '/etc/pi-image/secrets/heketi-admin-key', content: s.heketiAdminKey, permissions: '0600', secret: true });
    files.push({ path: '/etc/pi-image/secrets/heketi-ssh-key', content: s.heketiSshKey, permissions: '0600', secret: true });
    if (k.enabled && g.storageClass.enabled) {
      files.push({ path: '/etc/pi-image/storageclass.yaml', content: yamlDocs(storageClass(p, s)), permissions: '0600', secret: true });
    }
  }
  for (const f of p.files) files.push({ path: f.path, content: f.content, permissions: f.permissions, owner: f.owner });
  return files;
}

function cloudConfig(p: Profile, node: ResolvedNode, files: WriteFile[], steps: string[]): Record<string, unknown> {
  const users: unknown[] = p.users.length === 0
    ? ['default']
    : p.users.map((u) => ({
        name: u.name,
        ...(u.groups.length || u.sudo ? { groups: [...new Set([...(u.sudo ? ['adm', 'sudo'] : []), ...u.groups])].join(',') } : {}),
        ...(u.sudo ? { sudo: 'ALL=(ALL) NOPASSWD:ALL' } : {}),
        shell: u.shell,
        lock_passwd: !(u.passwordLogin && u.passwordHash),
        ...(u.passwordHash ? { passwd: u.passwordHash } : {}),
        ...(u.sshKeys.length ? { ssh_authorized_keys: u.sshKeys } : {}),
      }));
  const cfg: Record<string, unknown> = {
    hostname: node.name,
    fqdn: node.fqdn,
    preserve_hostname: false,
    manage_etc_hosts: false,
    timezone: p.timezone,
    locale: p.locale,
    users,
    ssh_pwauth: p.users.some((u) => u.passwordLogin && u.passwordHash),
    disable_root: true,
  };
  if (p.ntp.enabled) cfg.ntp = { enabled: true, ...(p.ntp.servers.length ? { servers: p.ntp.servers } : {}), ...(p.ntp.pools.length ? { pools: p.ntp.pools } : {}) };
  if (p.apt.mirror) {
    cfg.apt = {
      preserve_sources_list: false,
      primary: [{ arches: ['default'], uri: p.apt.mirror }],
      security: [{ arches: ['default'], uri: p.apt.securityMirror ?? p.apt.mirror }],
    };
  }
  // The SSD image's root partition is only as large as its ext4 (small images flash fast). bootcmd runs before
  // resize_rootfs, so it grows p1 to the profile's root size (never over the brick space behind it, and never past
  // the disk) and resize_rootfs then grows the ext4 online. growpart would take the whole disk: off.
  cfg.bootcmd = [['sh', '-c', growRootScript(p.rootSizeBytes / 512)], ['sh', '-c', HOLD_APT]];
  cfg.growpart = { mode: 'off' };
  cfg.resize_rootfs = true;
  cfg.write_files = files.map((f) => ({ path: f.path, content: f.content, permissions: f.permissions, owner: f.owner ?? 'root:root' }));
  cfg.runcmd = [
    ...steps.map((s) => [SCRIPT, s]),
    ...p.runcmd,
    [SCRIPT, 'scrub'],
  ];
  return cfg;
}

/**
 * bootcmd, every boot until first boot is complete: apt's daily timers and the unattended-upgrades they start are
 * held (runtime masks: a reboot drops them too) so that an NTP clock jump does not start them while first boot
 * installs packages; firstboot.sh's scrub gives them back (release_apt). The same units as firstboot.sh's hold_apt.
 */
export const HOLD_APT = [
  '[ ! -e /var/lib/pi-image/complete ] || exit 0',
  'echo "pi-image: holding apt-daily.timer, apt-daily-upgrade.timer (unattended-upgrades) until first boot is complete"',
  'systemctl mask --runtime --quiet apt-daily.service apt-daily-upgrade.service 2>/dev/null',
  'systemctl stop --no-block apt-daily.timer apt-daily-upgrade.timer 2>/dev/null',
  'exit 0',
].join('\n');

/**
 * Shell run from bootcmd on every boot; it acts once: when / is partition 1 of a disk with a single partition and
 * that partition is smaller than `sectors`. Only numbers are interpolated.
 */
export function growRootScript(sectors: number): string {
  if (!Number.isSafeInteger(sectors) || sectors <= 0) throw new InputError(`the root size of ${sectors} sectors is not a positive whole number of sectors`, 'check ssd.rootSize in the profile');
  return [
    'src=$(findmnt -no SOURCE /) || exit 0',
    'name=$(basename "$src"); disk=$(lsblk -no PKNAME "$src" | head -n1); [ -n "$disk" ] || exit 0',
    '[ "$(cat /sys/class/block/$name/partition 2>/dev/null)" = 1 ] || exit 0',
    '[ "$(sfdisk -d /dev/$disk | grep -c start=)" = 1 ] || exit 0',
    'start=$(cat /sys/class/block/$name/start); cur=$(cat /sys/class/block/$name/size); total=$(cat /sys/block/$disk/size)',
    `want=${sectors}; [ $((start + want)) -le "$total" ] || want=$((total - start))`,
    '[ "$cur" -lt "$want" ] || exit 0',
    'echo "pi-image: growing /dev/$name from $cur to $want sectors"',
    'echo ",$want" | sfdisk --quiet --no-reread --no-tell-kernel -N 1 /dev/$disk && partx -u --nr 1 /dev/$disk || echo "pi-image: could not grow /dev/$name"',
  ].join('\n');
}

function userData(cfg: Record<string, unknown>, header: string): string {
  return `#cloud-config\n# ${header}\n${yaml11(cfg)}`;
}

/** One node's seed files. */
export function renderSeed(p: Profile, nodeName: string, secrets: Secrets, o: SeedOptions = {}): Seed {
  const node = findNode(p, nodeName);
  const steps = firstbootSteps(p, node, o);
  const files = writeFiles(p, node, secrets, steps);
  const header = `pi-image: ${node.name} (${node.role}) of cluster ${p.cluster.name}. Secrets in this file are removed after first boot.`;
  const scrubbedFiles = files.filter((f) => !f.secret);
  const scrubbed = userData(cloudConfig(p, node, scrubbedFiles, steps), `pi-image: ${node.name} of cluster ${p.cluster.name}, secrets removed after first boot.`);
  const full = userData(cloudConfig(p, node, [...files, { path: '/etc/pi-image/user-data.scrubbed', content: scrubbed, permissions: '0644' }], steps), header);
  const network = `# pi-image: network of ${node.name}\n${yaml11(networkConfig(node))}`;
  const digest = createHash('sha256').update(full).update('\0').update(network).digest('hex').slice(0, 12);
  const instanceId = `pi-image-${p.cluster.name}-${node.name}-${digest}`;
  const meta = `# pi-image: a new instance-id makes cloud-init run again\n${yaml11({ 'instance-id': instanceId, 'local-hostname': node.name })}`;
  const secretFiles = files.filter((f) => f.secret).map((f) => f.path);
  return { 'user-data': full, 'meta-data': meta, 'network-config': network, instanceId, secretFiles };
}
