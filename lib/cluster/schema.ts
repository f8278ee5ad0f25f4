// The cluster profile schema (apiVersion pi-image/v1): every key, its type, its default and the rules a value must
// follow. Values that reach user-data, shell scripts or kubeadm config are constrained here (names, addresses,
// URLs, hashes) so nothing a user writes can change the meaning of what we render.
import * as z from 'zod';
import { IMAGE_REPOSITORY } from './kubeadm-images.ts';

/** RFC 1123 label: letters, digits, hyphens; no leading/trailing hyphen; at most 63 characters. */
export const RFC1123_LABEL = /^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const CIDR = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\/\d{1,2}$/;
/** http(s) URL without whitespace, quotes or shell metacharacters. `{version}` is allowed as a placeholder. */
const URL_RE = /^https?:\/\/[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~:/?#@!&+=%,{}-]*)?$/;
const SHA256 = /^([a-f0-9]{64}|published)$/;
const VERSION = /^\d+\.\d+\.\d+$/;
export const POSIX_USER = /^[a-z_][a-z0-9_-]{0,31}$/;
export const SSH_KEY = /^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( [^\n\r]*)?$/;
const SIZE = /^\d+(\.\d+)?\s*(B|KiB|MiB|GiB|TiB|K|M|G|T|KB|MB|GB|TB)?$/;
const QUIRK = /^[0-9a-f]{4}:[0-9a-f]{4}:[a-z]+$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IMAGE_REF = /^[a-z0-9][a-z0-9._:/@-]*$/;
/** ingress-nginx 0.30.0's arm64 controller (the default manifests name the amd64 one). */
export const INGRESS_NGINX_ARM64_IMAGE = 'quay.io/kubernetes-ingress-controller/nginx-ingress-controller-arm64:0.30.0';
const SERIAL = /^[0-9a-f]{8}$/;
const IFACE = /^[a-zA-Z0-9_.-]{1,15}$/;
const ABS_PATH = /^\/[A-Za-z0-9._+@/-]*$/;
const NO_CTRL = /^[^\x00-\x08\x0b-\x1f\x7f]*$/;

const str = (re: RegExp, what: string) => z.string().regex(re, what);
const hostname = str(RFC1123_LABEL, 'must be an RFC 1123 label: a-z, 0-9 and "-", 1–63 characters, not starting or ending with "-"');
const url = str(URL_RE, 'must be an http(s) URL without spaces, quotes or shell characters');
const sha256 = str(SHA256, 'must be 64 lowercase hex digits, or "published" to check against the <url>.sha256 file next to it');
const ipv4 = str(IPV4, 'must be an IPv4 address like 10.0.0.1');
const cidr = str(CIDR, 'must be a CIDR like 10.244.0.0/16');
const absPath = str(ABS_PATH, 'must be an absolute path of letters, digits and ._+@/-').refine(
  (p) => !p.split('/').some((seg) => seg === '..' || seg === '.'),
  'must not contain "." or ".." segments (write the path it means)',
);

/** A download with its checksum. */
const download = (defUrl: string, defSha = 'published') =>
  z.strictObject({ url: url.default(defUrl), sha256: sha256.default(defSha) }).prefault({});

const nodeNet = {
  /** `dhcp` or a static `address/prefix`. */
  address: z.union([z.literal('dhcp'), cidr]).optional(),
  gateway: ipv4.optional(),
  dns: z.array(ipv4).optional(),
  search: z.array(str(DNS_NAME, 'must be a DNS domain name')).optional(),
  interface: str(IFACE, 'must be a network interface name like eth0').optional(),
  mac: str(MAC, 'must be a MAC address like dc:a6:32:01:36:c2 (lowercase)').optional(),
};

export const NodeSchema = z.strictObject({
  name: hostname,
  role: z.enum(['master', 'worker']).default('worker'),
  ...nodeNet,
  serial: str(SERIAL, 'must be the 8-hex-digit Pi serial (lowercase)').optional(),
  /** Kubernetes node labels. */
  labels: z.record(str(/^[A-Za-z0-9._/-]{1,253}$/, 'label key'), str(/^[A-Za-z0-9._-]{0,63}$/, 'must be a Kubernetes label value')).optional(),
});

const UserSchema = z.strictObject({
  name: str(POSIX_USER, 'must be a POSIX user name: a-z, 0-9, _ and -, starting with a letter or _'),
  sshKeys: z.array(str(SSH_KEY, 'must be one OpenSSH public key line ("ssh-ed25519 AAAA… comment")')).default([]),
  sudo: z.boolean().default(true),
  /** A crypt(3) hash (mkpasswd -m sha-512); password login stays off unless `passwordLogin: true`. */
  passwordHash: str(/^\$[0-9a-z]+\$[A-Za-z0-9./$=,]+$/, 'must be a crypt(3) hash like $6$salt$hash').optional(),
  passwordLogin: z.boolean().default(false),
  shell: absPath.default('/bin/bash'),
  groups: z.array(str(POSIX_USER, 'must be a group name')).default([]),
});

const FileSchema = z.strictObject({
  path: absPath,
  content: str(NO_CTRL, 'must be text without control characters (tabs and newlines are fine)'),
  permissions: str(/^0?[0-7]{3,4}$/, 'must be an octal mode like "0644"').default('0644'),
  owner: str(/^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$/, 'must be user:group').default('root:root'),
});

const RuncmdSchema = z.union([
  str(NO_CTRL, 'must be a shell command without control characters'),
  z.array(str(NO_CTRL, 'must be an argument without control characters')).min(1),
]);

export const ProfileSchema = z.strictObject({
  apiVersion: z.literal('pi-image/v1', { error: 'must be "pi-image/v1"' }),
  cluster: z
    .strictObject({
      name: hostname.default('yarpi4'),
      /** Domain for each node's fqdn (node1.<domain>). */
      domain: str(DNS_NAME, 'must be a DNS domain name').default('home.arpa'),
    })
    .prefault({}),
  /** Catalog id, URL or path of the base image. */
  image: z.string().min(1).default('ubuntu-19.10.1-raspi'),
  os: z
    .strictObject({
      version: str(/^\d+\.\d+(\.\d+)?$/, 'must be an Ubuntu version like 19.10.1').default('19.10.1'),
      codename: str(/^[a-z]+$/, 'must be an Ubuntu codename like eoan').default('eoan'),
    })
    .prefault({}),
  /** Fixed timestamps for reproducible images (seconds since 1970); SOURCE_DATE_EPOCH overrides. */
  epoch: z.number().int().nonnegative().default(1577836800),
  defaults: z
    .strictObject({
      ...nodeNet,
      address: z.literal('dhcp').optional(),
      interface: str(IFACE, 'must be a network interface name like eth0').default('eth0'),
      prefix: z.number().int().min(0).max(32).optional(),
    })
    .prefault({}),
  nodes: z.array(NodeSchema).min(1, 'list at least one node'),
  ssd: z
    .strictObject({
      quirks: z.array(str(QUIRK, 'must be VID:PID:flags like 174c:55aa:u')).default(['174c:55aa:u']),
      rootSize: str(SIZE, 'must be a size like 32GiB').default('32GiB'),
      brick: z.boolean().default(true),
      brickDevice: absPath.default('/dev/sda2'),
    })
    .prefault({}),
  kernel: z
    .strictObject({
      /** Extra kernel command-line words, added after pi-image's own. */
      cmdline: z.array(str(/^[A-Za-z0-9_.,:=\/+-]+$/, 'must be one kernel parameter without spaces')).default([]),
    })
    .prefault({}),
  users: z.array(UserSchema).default([]),
  timezone: str(/^[A-Za-z0-9_+\/-]+$/, 'must be a tz name like Europe/Paris').default('Etc/UTC'),
  locale: str(/^[A-Za-z0-9_.@-]+$/, 'must be a locale like en_US.UTF-8').default('en_US.UTF-8'),
  ntp: z
    .strictObject({
      enabled: z.boolean().default(true),
      servers: z.array(str(DNS_NAME, 'must be a host name or address')).default([]),
      pools: z.array(str(DNS_NAME, 'must be a host name')).default(['ntp.ubuntu.com']),
      /** How long first boot waits for NTP before the steps that need a true time (then they are put off). */
      waitSeconds: z.number().int().min(0).max(3600).default(300),
    })
    .prefault({}),
  apt: z
    .strictObject({
      /** Archive mirror; default: old-releases.ubuntu.com for end-of-life releases (eoan), else the image's own. */
      mirror: url.optional(),
      securityMirror: url.optional(),
      packages: z.array(str(/^[a-z0-9][a-z0-9+.:=~-]*$/, 'must be a Debian package name')).default([]),
    })
    .prefault({}),
  kubernetes: z
    .strictObject({
      enabled: z.boolean().default(true),
      version: str(VERSION, 'must be a version like 1.17.17').default('1.17.17'),
      /** binaries (release binaries from dl.k8s.io, for < 1.24) or apt (pkgs.k8s.io, ≥ 1.24). Default by version. */
      install: z.enum(['binaries', 'apt']).optional(),
      /** Container runtime from the release's archive. Default: docker.io before 1.24, containerd after. */
      runtime: z.enum(['docker.io', 'containerd']).optional(),
      /** Lifetime of the bootstrap token in the seeds (kubeadm ttl, e.g. 48h or 90m); the master also deletes it once
       *  every node of the profile has joined. */
      tokenTTL: str(/^([1-9]\d{0,3}h|[1-9]\d{0,5}m)$/, 'must be a duration like 48h or 90m (at most 9999h)').default('48h'),
      podCIDR: cidr.default('10.244.0.0/16'),
      serviceCIDR: cidr.default('10.96.0.0/12'),
      dnsDomain: str(DNS_NAME, 'must be a DNS domain').default('cluster.local'),
      /** host:port clients and workers use; default <master address>:6443. */
      apiEndpoint: str(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port').optional(),
      /** kubeadm config apiVersion; default by version (v1beta2 < 1.22, v1beta3 < 1.31, v1beta4 after). */
      kubeadmApiVersion: z.enum(['kubeadm.k8s.io/v1beta2', 'kubeadm.k8s.io/v1beta3', 'kubeadm.k8s.io/v1beta4']).optional(),
      binaries: z
        .strictObject({
          /** `{version}` is replaced by kubernetes.version. */
          baseUrl: url.default('https://dl.k8s.io/release/v{version}/bin/linux/arm64'),
          sha256: z
            .strictObject({ kubeadm: sha256.default('published'), kubelet: sha256.default('published'), kubectl: sha256.default('published') })
            .prefault({}),
          crictl: download('https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.17.0/crictl-v1.17.0-linux-arm64.tar.gz'),
          cni: download('https://github.com/containernetworking/plugins/releases/download/v0.8.5/cni-plugins-linux-arm64-v0.8.5.tgz'),
        })
        .prefault({}),
      /** Where kubeadm's control-plane images come from (k8s.gcr.io is frozen); a mirror's host/path works too. */
      imageRepository: str(/^[a-z0-9.-]+(:\d{1,5})?(\/[a-z0-9._-]+)*$/, 'must be a registry host[/path] like registry.k8s.io').default(IMAGE_REPOSITORY),
      /** pkgs.k8s.io repository; `{minor}` is replaced by v<major>.<minor>. */
      aptRepo: url.default('https://pkgs.k8s.io/core:/stable:/{minor}/deb/'),
      calico: z
        .strictObject({
          enabled: z.boolean().default(true),
          /** A manifest URL, or `<archive URL>#<member path>` for a manifest inside a release archive. */
          manifest: url.default('https://github.com/projectcalico/calico/releases/download/v3.13.4/release-v3.13.4.tgz#release-v3.13.4/k8s-manifests/calico.yaml'),
          sha256: sha256.optional(),
        })
        .prefault({}),
      metallb: z
        .strictObject({
          enabled: z.boolean().default(true),
          manifests: z
            .array(url)
            .default([
              'https://raw.githubusercontent.com/metallb/metallb/v0.9.3/manifests/namespace.yaml',
              'https://raw.githubusercontent.com/metallb/metallb/v0.9.3/manifests/metallb.yaml',
            ]),
          /** configmap (MetalLB ≤ 0.12) or crd (IPAddressPool + L2Advertisement, ≥ 0.13). */
          config: z.enum(['configmap', 'crd']).default('configmap'),
          addresses: z.array(z.string()).default([]),
        })
        .prefault({}),
      ingressNginx: z
        .strictObject({
          enabled: z.boolean().default(true),
          // The controller image the manifests' controller is changed to (addons.ts); null keeps the manifests' own.
          // 0.30.0's mandatory.yaml names the amd64 image; arm64 was the separate `-arm64` image.
          image: str(IMAGE_REF, 'must be an image reference like quay.io/kubernetes-ingress-controller/nginx-ingress-controller-arm64:0.30.0, or null').nullable().default(INGRESS_NGINX_ARM64_IMAGE),
          manifests: z
            .array(url)
            .default([
              'https://raw.githubusercontent.com/kubernetes/ingress-nginx/nginx-0.30.0/deploy/static/mandatory.yaml',
              'https://raw.githubusercontent.com/kubernetes/ingress-nginx/nginx-0.30.0/deploy/static/provider/baremetal/service-nodeport.yaml',
            ]),
        })
        .prefault({}),
    })
    .prefault({}),
  glusterfs: z
    .strictObject({
      enabled: z.boolean().default(true),
      replica: z.number().int().min(1).max(9).default(3),
      heketi: z
        .strictObject({
          enabled: z.boolean().default(true),
          download: download('https://github.com/heketi/heketi/releases/download/v10.4.0/heketi-v10.4.0-release-10.linux.arm64.tar.gz'),
          port: z.number().int().min(1).max(65535).default(8080),
        })
        .prefault({}),
      storageClass: z
        .strictObject({
          enabled: z.boolean().default(true),
          name: hostname.default('glusterfs'),
          default: z.boolean().default(true),
        })
        .prefault({}),
    })
    .prefault({}),
  /** More downloads carried in every node's bundle (pinned by `pi-image lock`): files placed at `path`, images loaded. */
  bundle: z
    .strictObject({
      files: z
        .array(
          z.strictObject({
            url,
            sha256: str(/^[a-f0-9]{64}$/, 'must be 64 lowercase hex digits').optional(),
            path: absPath,
            permissions: str(/^0?[0-7]{3,4}$/, 'must be an octal mode like "0755"').default('0644'),
          }),
        )
        .default([]),
      images: z.array(str(IMAGE_REF, 'must be an image reference like docker.io/library/busybox:1.36')).default([]),
    })
    .prefault({}),
  /** Extra files written on every node (cloud-init write_files). */
  files: z.array(FileSchema).default([]),
  /** Extra commands run on every node after pi-image's own steps, before the seed is scrubbed. */
  runcmd: z.array(RuncmdSchema).default([]),
});

export type ProfileInput = z.input<typeof ProfileSchema>;
export type ParsedProfile = z.output<typeof ProfileSchema>;
export type ProfileNode = z.output<typeof NodeSchema>;
