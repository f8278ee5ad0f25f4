// Load a cluster profile: find the file, parse the YAML, validate it with the schema and the cross-field rules
// (addresses within prefixes, no duplicates, one master, CIDRs that do not collide), fill version-dependent
// defaults, and name the field AND the line of any mistake. Returns a typed Profile plus its path and a digest.
import { PACKAGE_ROOT } from '../paths.ts';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Document, type Node as YNode } from 'yaml';
import { InputError } from '../errors.ts';
import { ProfileSchema, type ParsedProfile } from './schema.ts';
import { releaseFacts } from '../source/catalog.ts';
import { contains, isNetworkOrBroadcast, overlaps, parseCidr, parseIPv4, parseRange, formatIPv4 } from './net.ts';

/** The package's root directory (profiles/ and cloud-init/ live there). */
export { PACKAGE_ROOT };
export const BUILTIN_PROFILE = join(PACKAGE_ROOT, 'profiles', 'yarpi4.yaml');
export const DEFAULT_PROFILE_NAME = 'pi-image.yaml';

export interface NodeAddress {
  ip: string;
  prefix: number;
}

/** A node with the profile defaults applied. */
export interface ResolvedNode {
  name: string;
  role: 'master' | 'worker';
  interface: string;
  /** 'dhcp' or a static address. */
  address: 'dhcp' | NodeAddress;
  gateway?: string;
  dns: string[];
  search: string[];
  mac?: string;
  serial?: string;
  labels: Record<string, string>;
  fqdn: string;
}

export type Profile = Omit<ParsedProfile, 'nodes' | 'kubernetes'> & {
  nodes: ResolvedNode[];
  kubernetes: ParsedProfile['kubernetes'] & {
    install: 'binaries' | 'apt';
    runtime: 'docker.io' | 'containerd';
    kubeadmApiVersion: string;
    apiEndpoint: string;
  };
  apt: ParsedProfile['apt'];
  /** ssd.rootSize in bytes. */
  rootSizeBytes: number;
};

export interface LoadedProfile {
  profile: Profile;
  profilePath: string;
  /** sha256 of the normalised (defaults-filled) profile, hex. */
  digest: string;
}

/** Which file loadProfile would read: the explicit path, ./pi-image.yaml, or the built-in reference cluster. */
export function resolveProfilePath(path?: string, cwd = process.cwd()): string {
  if (path) return resolve(cwd, path);
  const local = join(cwd, DEFAULT_PROFILE_NAME);
  return existsSync(local) ? local : BUILTIN_PROFILE;
}

/** The profile's node `name`; an InputError naming the nodes there when it has none (`where`: which profile). */
export function findNode(p: Pick<Profile, 'nodes'>, name: string, where = 'the profile'): ResolvedNode {
  const node = p.nodes.find((n) => n.name === name);
  if (!node) throw new InputError(`no node "${name}" in ${where}`, `nodes there: ${p.nodes.map((n) => n.name).join(', ')}`);
  return node;
}

/** The node names `selection` picks ('all': every node, in the profile's order), each one checked by findNode. */
export function selectNodes(p: Pick<Profile, 'nodes'>, selection: string[] | 'all', where?: string): string[] {
  return selection === 'all' ? p.nodes.map((n) => n.name) : selection.map((n) => findNode(p, n, where).name);
}

/** Read, validate and normalise a profile file. Throws InputError naming file, line and field. */
export async function loadProfile(path?: string): Promise<LoadedProfile> {
  const profilePath = resolveProfilePath(path);
  let text: string;
  try {
    text = readFileSync(profilePath, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read profile ${profilePath}: ${(err as Error).message}`, 'give an existing file with --profile, or run `pi-image init`');
  }
  const profile = parseProfile(text, profilePath);
  return { profile, profilePath, digest: profileDigest(profile) };
}

/** Parse and validate profile text; `source` names the file in errors. */
export function parseProfile(text: string, source = 'profile'): Profile {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, version: '1.1', prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new InputError(`${source}:${pos.line}: not valid YAML: ${e.message.split('\n')[0]}`, 'fix the YAML syntax at that line');
  }
  const where = (path: (string | number)[]) => `${source}:${lineOf(doc, lc, path)}`;
  const fail = (path: (string | number)[], msg: string): never => {
    throw new InputError(`${where(path)}: ${fieldName(path)} ${msg}`, 'fix that field in the profile (see docs/profile.md)');
  };
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    // yaml's alias limit ("Excessive alias count …"): a billion-laughs document, refused by name.
    throw new InputError(`${source}: not a usable profile: ${(err as Error).message} (YAML aliases expand too far)`, 'write the values out instead of nesting aliases');
  }
  const parsed = ProfileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') fail([...path, issue.keys[0]!], 'is not a profile key (misspelt?)');
    fail(path, issue.message.replace(/^Invalid input: /, 'is invalid: '));
  }
  return normalise(parsed.data!, fail);
}

function normalise(p: ParsedProfile, fail: (path: (string | number)[], msg: string) => never): Profile {
  const d = p.defaults;
  const names = new Map<string, number>();
  const ips = new Map<string, number>();
  const nodes: ResolvedNode[] = p.nodes.map((n, i) => {
    if (names.has(n.name)) fail(['nodes', i, 'name'], `"${n.name}" is used twice (also nodes[${names.get(n.name)}])`);
    names.set(n.name, i);
    const rawAddr = n.address ?? d.address;
    if (rawAddr === undefined) fail(['nodes', i], 'needs an address ("10.0.0.11/24" or "dhcp"), or defaults.address: dhcp');
    let address: ResolvedNode['address'] = 'dhcp';
    const gateway = n.gateway ?? d.gateway;
    if (rawAddr !== 'dhcp') {
      const c = parseCidr(rawAddr!);
      if (!c) fail(['nodes', i, 'address'], `"${rawAddr}" is not an address/prefix`);
      if (c!.prefix < 8 || c!.prefix > 30) fail(['nodes', i, 'address'], `prefix /${c!.prefix} is not a LAN prefix (8–30)`);
      if (isNetworkOrBroadcast(c!, c!.address)) fail(['nodes', i, 'address'], `${rawAddr} is the network or broadcast address of its prefix`);
      const ip = formatIPv4(c!.address);
      if (ips.has(ip)) fail(['nodes', i, 'address'], `${ip} is used twice (also nodes[${ips.get(ip)}])`);
      ips.set(ip, i);
      if (gateway !== undefined) {
        const g = parseIPv4(gateway);
        const gpath = n.gateway !== undefined ? ['nodes', i, 'gateway'] : ['defaults', 'gateway'];
        if (g === undefined) fail(gpath, `"${gateway}" is not an IPv4 address`);
        if (!contains(c!, g!)) fail(gpath, `${gateway} is outside ${n.name}'s network ${formatIPv4(c!.network)}/${c!.prefix}`);
        if (g === c!.address) fail(gpath, `${gateway} is ${n.name}'s own address`);
      }
      address = { ip, prefix: c!.prefix };
    }
    const dns = n.dns ?? d.dns ?? [];
    dns.forEach((a, j) => parseIPv4(a) === undefined && fail(n.dns ? ['nodes', i, 'dns', j] : ['defaults', 'dns', j], `"${a}" is not an IPv4 address`));
    return {
      name: n.name,
      role: n.role,
      interface: n.interface ?? d.interface,
      address,
      gateway,
      dns,
      search: n.search ?? d.search ?? [],
      mac: n.mac ?? d.mac,
      serial: n.serial,
      labels: n.labels ?? {},
      fqdn: `${n.name}.${p.cluster.domain}`,
    };
  });
  const serials = new Map<string, number>();
  p.nodes.forEach((n, i) => {
    if (!n.serial) return;
    if (serials.has(n.serial)) fail(['nodes', i, 'serial'], `${n.serial} is used twice`);
    serials.set(n.serial, i);
  });
  const masters = nodes.filter((n) => n.role === 'master');
  const k = p.kubernetes;
  if (k.enabled && masters.length !== 1) fail(['nodes'], `must have exactly one node with role: master (found ${masters.length})`);
  const master = masters[0];

  // Kubernetes: version-dependent defaults, CIDRs that collide with nothing.
  const [maj, min] = k.version.split('.').map(Number) as [number, number];
  const minor = maj * 100 + min;
  const install = k.install ?? (minor >= 124 ? 'apt' : 'binaries');
  if (k.enabled && install === 'apt' && minor < 124) fail(['kubernetes', 'install'], 'apt: pkgs.k8s.io has no packages before 1.24; use install: binaries');
  const runtime = k.runtime ?? (minor >= 124 ? 'containerd' : 'docker.io');
  if (k.enabled && runtime === 'docker.io' && minor >= 124) fail(['kubernetes', 'runtime'], 'docker.io: Kubernetes ≥ 1.24 has no dockershim; use containerd');
  const kubeadmApiVersion = k.kubeadmApiVersion ?? (minor < 122 ? 'kubeadm.k8s.io/v1beta2' : minor < 131 ? 'kubeadm.k8s.io/v1beta3' : 'kubeadm.k8s.io/v1beta4');
  const pod = parseCidr(k.podCIDR);
  const svc = parseCidr(k.serviceCIDR);
  if (!pod || pod.address !== pod.network) fail(['kubernetes', 'podCIDR'], `"${k.podCIDR}" is not a network address/prefix`);
  if (!svc || svc.address !== svc.network) fail(['kubernetes', 'serviceCIDR'], `"${k.serviceCIDR}" is not a network address/prefix`);
  if (overlaps(pod!, svc!)) fail(['kubernetes', 'serviceCIDR'], `${k.serviceCIDR} overlaps podCIDR ${k.podCIDR}`);
  nodes.forEach((n, i) => {
    if (n.address === 'dhcp') return;
    const lan = parseCidr(`${n.address.ip}/${n.address.prefix}`)!;
    if (overlaps(lan, pod!)) fail(['kubernetes', 'podCIDR'], `${k.podCIDR} overlaps ${n.name}'s network (nodes[${i}].address); pick another pod CIDR`);
    if (overlaps(lan, svc!)) fail(['kubernetes', 'serviceCIDR'], `${k.serviceCIDR} overlaps ${n.name}'s network (nodes[${i}].address)`);
  });
  let apiEndpoint = k.apiEndpoint;
  if (!apiEndpoint && k.enabled) {
    if (!master || master.address === 'dhcp') fail(['kubernetes', 'apiEndpoint'], 'is needed when the master has no static address');
    apiEndpoint = `${(master!.address as NodeAddress).ip}:6443`;
  }
  if (k.enabled && k.metallb.enabled) {
    if (k.metallb.addresses.length === 0) fail(['kubernetes', 'metallb', 'addresses'], 'needs at least one range like 10.0.0.200-10.0.0.250 (or set metallb.enabled: false)');
    k.metallb.addresses.forEach((r, j) => {
      const range = parseRange(r);
      if (!range) fail(['kubernetes', 'metallb', 'addresses', j], `"${r}" is not a range a.b.c.d-e.f.g.h or a network CIDR`);
      for (const n of nodes) {
        if (n.address !== 'dhcp') {
          const ip = parseIPv4(n.address.ip)!;
          if (ip >= range![0] && ip <= range![1]) fail(['kubernetes', 'metallb', 'addresses', j], `${r} contains ${n.name}'s address ${n.address.ip}`);
        }
      }
    });
  }
  const g = p.glusterfs;
  if (g.enabled && !p.ssd.brick) fail(['glusterfs', 'enabled'], 'needs ssd.brick: true (the brick partition Heketi uses)');
  if (g.enabled && g.heketi.enabled && g.replica > nodes.length) fail(['glusterfs', 'replica'], `${g.replica} is more than the ${nodes.length} nodes`);
  if (g.enabled && g.storageClass.enabled && k.enabled && minor >= 126)
    fail(['glusterfs', 'storageClass', 'enabled'], 'the in-tree GlusterFS provisioner was removed in Kubernetes 1.26; set it to false');
  if (g.enabled && g.heketi.enabled && (!master || master.address === 'dhcp')) fail(['glusterfs', 'heketi'], 'needs a master with a static address');
  nodes.forEach((n, i) => {
    if (g.enabled && n.address === 'dhcp') fail(['nodes', i, 'address'], 'must be static when glusterfs is enabled (Heketi names nodes by address)');
  });
  p.users.forEach((u, i) => {
    if (u.name === 'root') fail(['users', i, 'name'], 'root cannot be a profile user');
  });

  const rootSizeBytes = parseSize(p.ssd.rootSize);
  if (rootSizeBytes < 4 * 2 ** 30) fail(['ssd', 'rootSize'], `${p.ssd.rootSize} is below the 4 GiB the base image needs`);
  if (rootSizeBytes % (1024 * 1024) !== 0) fail(['ssd', 'rootSize'], `${p.ssd.rootSize} is not a whole number of MiB`);

  const eol = releaseFacts(p.os.codename).endOfLife;
  const apt = { ...p.apt, mirror: p.apt.mirror ?? (eol ? 'http://old-releases.ubuntu.com/ubuntu' : undefined) };
  apt.securityMirror = p.apt.securityMirror ?? (eol ? apt.mirror : undefined);

  return {
    ...p,
    nodes,
    apt,
    kubernetes: { ...k, install, runtime, kubeadmApiVersion, apiEndpoint: apiEndpoint ?? '' },
    rootSizeBytes,
  };
}

const UNITS: Record<string, number> = { B: 1, K: 1024, KIB: 1024, M: 2 ** 20, MIB: 2 ** 20, G: 2 ** 30, GIB: 2 ** 30, T: 2 ** 40, TIB: 2 ** 40, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };

/** "32GiB" → bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(s.trim());
  if (!m) throw new InputError(`"${s}" is not a size like 32GiB`);
  const unit = UNITS[(m[2] || 'B').toUpperCase()];
  if (unit === undefined) throw new InputError(`"${s}": unknown unit ${m[2]}`);
  return Math.round(Number(m[1]) * unit);
}

/** sha256 of the normalised profile (keys sorted), so the manifest can say which profile made an image. */
export function profileDigest(p: Profile): string {
  return createHash('sha256').update(canonicalJson(p)).digest('hex');
}

export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function fieldName(path: (string | number)[]): string {
  if (path.length === 0) return 'the profile';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** The line of the deepest node on `path` that exists in the document (the key's line for a missing value). */
function lineOf(doc: Document, lc: LineCounter, path: (string | number)[]): number {
  let node: unknown = doc.contents;
  let line = 1;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && it.key.value === key);
      if (!pair) break;
      const k = pair.key as YNode;
      if (k.range) line = lc.linePos(k.range[0]).line;
      node = pair.value;
      continue; // report the key's line: a block value starts on the next one
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key] as YNode | undefined;
      if (!item) break;
      if (item.range) line = lc.linePos(item.range[0]).line;
      node = item;
    } else break;
    const n = node as YNode | null;
    if (n && n.range) line = lc.linePos(n.range[0]).line;
  }
  return line;
}
