// pi-image.lock: every first-boot download of a profile pinned — files (with archive members), container images
// resolved to a platform manifest with its blobs, and OS packages (resolved by lib/lock/apt/, plugged in through
// PackageResolver) — plus which entries each role carries. Pure encode/decode of the YAML, no I/O.
// Invariants: encode(decode(t)) === t for any text encode made; entries sorted by id, keys in a fixed order, no
// times or paths, so the same inputs give the same bytes and a diff shows only what changed.
// `inputs` is the sha256 of what the profile asked for (LockRequest[]); `build` compares request by request to
// name the entry that went stale.
import { createHash } from 'node:crypto';
import { parseDocument, stringify } from 'yaml';
import { InputError } from '../errors.ts';
import { CONTROL_FIELDS, packageId } from './package-id.ts';

export const LOCK_VERSION = 1;
export const LOCK_FILE = 'pi-image.lock';
export type Role = 'master' | 'worker';
export const ROLES: Role[] = ['master', 'worker'];

/** How a file's sha256 was established. */
export type SumSource =
  /** A checksum file published beside it (<url>.sha256) exists and matched. */
  | 'published'
  /** The profile gave the sha256 and the download matched it. */
  | 'profile'
  /** No checksum was published: the sha256 is what was downloaded when the lock was made. */
  | 'pinned-at-lock';

export interface LockFile {
  id: string;
  /** The profile key that names it (what to change when it is refused or stale). */
  key: string;
  url: string;
  sha256: string;
  size: number;
  sum: SumSource;
  /** binary (an ELF), archive (a .tar.gz), manifest (Kubernetes YAML), data (anything: bundle.files). */
  kind: 'binary' | 'archive' | 'manifest' | 'data';
  /** For a member of an archive: the path inside it; `url`/`archive` are the archive's, sha256/size the member's. */
  member?: string;
  archive?: { sha256: string; size: number; sum: SumSource };
}

export interface LockBlob {
  digest: string;
  size: number;
  mediaType: string;
}

export interface LockImage {
  /** The reference as a manifest names it, normalised (docker.io/calico/node:v3.13.4). */
  id: string;
  key: string;
  /** Digest of the platform manifest: what is carried and loaded. */
  digest: string;
  mediaType: string;
  size: number;
  /** Digest of the index / manifest list the tag pointed at, when there was one. */
  index?: string;
  platform: string;
  config: LockBlob;
  layers: LockBlob[];
}

/** One .deb of the apt closure (lib/lock/apt/ makes these). */
export interface LockPackage {
  package: string;
  version: string;
  architecture: string;
  /** Pool path in the archive (Filename: of the Packages stanza). */
  filename: string;
  url: string;
  sha256: string;
  size: number;
  /**
   * The relationship fields of its Packages stanza (Depends, Pre-Depends, Provides, …; absent ones omitted): what
   * the bundle's local Packages index needs so apt can install it on the node with no network.
   */
  control?: Record<string, string>;
}

export { CONTROL_FIELDS, packageId } from './package-id.ts';

export interface Lock {
  lockVersion: typeof LOCK_VERSION;
  /** sha256 of the profile's requests (requestsDigest). */
  inputs: string;
  /** os/arch[/variant] of the base image, e.g. linux/arm64. */
  platform: string;
  files: LockFile[];
  images: LockImage[];
  packages: LockPackage[];
  /** Per role: the ids of the entries its nodes carry. */
  roles: Record<Role, { files: string[]; images: string[]; packages: string[] }>;
  /** What the profile asked for, one line per request (id → key and input), so staleness names the entry. */
  requests: LockRequest[];
}

/** One thing the profile asks for, before it is resolved: what `build` re-derives to tell a stale lock. */
export interface LockRequest {
  /** The entry id it becomes (images from add-on manifests are not requests: their manifest is). */
  id: string;
  key: string;
  /** What the profile said: a URL, URL#member, image reference, or package name. */
  input: string;
  kind: 'file' | 'image' | 'package';
  roles: Role[];
}

/** What the apt resolver is given and returns; lib/lock/apt/ implements it. */
export interface PackageRequest {
  /** Package names per role (plus the profile's apt.packages on every role). */
  roles: Record<Role, string[]>;
  /** Debian architecture of the base image (arm64). */
  architecture: string;
}
export interface PackageResolution {
  packages: LockPackage[];
  /** Per role: packageId()s of the closure. */
  roles: Record<Role, string[]>;
}
export type PackageResolver = (req: PackageRequest) => Promise<PackageResolution>;

export function requestsDigest(requests: LockRequest[]): string {
  const lines = [...requests].sort(byId).map((r) => `${r.kind}\t${r.id}\t${r.key}\t${r.input}\t${[...r.roles].sort().join(',')}`);
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Put every list in its canonical order (ids sorted, role lists sorted and unique). */
export function normaliseLock(l: Lock): Lock {
  const roleList = (xs: string[]) => [...new Set(xs)].sort(cmp);
  return {
    lockVersion: LOCK_VERSION,
    inputs: l.inputs,
    platform: l.platform,
    files: [...l.files].sort(byId).map(fileKeys),
    images: [...l.images].sort(byId).map(imageKeys),
    packages: [...l.packages].sort((a, b) => cmp(packageId(a), packageId(b))).map(packageKeys),
    roles: Object.fromEntries(ROLES.map((r) => [r, { files: roleList(l.roles[r]?.files ?? []), images: roleList(l.roles[r]?.images ?? []), packages: roleList(l.roles[r]?.packages ?? []) }])) as Lock['roles'],
    requests: [...l.requests].sort(byId).map((r) => ({ id: r.id, key: r.key, input: r.input, kind: r.kind, roles: [...r.roles].sort(cmp) })),
  };
}

// Fixed key order per entry (YAML keeps insertion order).
function fileKeys(f: LockFile): LockFile {
  return {
    id: f.id,
    key: f.key,
    kind: f.kind,
    url: f.url,
    ...(f.member !== undefined ? { member: f.member } : {}),
    sha256: f.sha256,
    size: f.size,
    sum: f.sum,
    ...(f.archive ? { archive: { sha256: f.archive.sha256, size: f.archive.size, sum: f.archive.sum } } : {}),
  };
}
const blobKeys = (b: LockBlob): LockBlob => ({ digest: b.digest, size: b.size, mediaType: b.mediaType });
function imageKeys(i: LockImage): LockImage {
  return {
    id: i.id,
    key: i.key,
    platform: i.platform,
    ...(i.index ? { index: i.index } : {}),
    digest: i.digest,
    mediaType: i.mediaType,
    size: i.size,
    config: blobKeys(i.config),
    layers: i.layers.map(blobKeys),
  };
}
function packageKeys(p: LockPackage): LockPackage {
  const c = p.control ?? {};
  const control = Object.fromEntries(CONTROL_FIELDS.filter((k) => c[k] !== undefined).map((k) => [k, c[k]!]));
  return { package: p.package, version: p.version, architecture: p.architecture, filename: p.filename, url: p.url, sha256: p.sha256, size: p.size, ...(Object.keys(control).length ? { control } : {}) };
}

const HEADER = [
  '# pi-image.lock — written by `pi-image lock`; commit it and review its diff like package-lock.json.',
  '# Every download a node makes at first boot, pinned: `pi-image build` fetches and verifies these and carries',
  '# them on the node\'s media. Do not edit by hand: change the profile and run `pi-image lock` again.',
].join('\n');

/** The lock's text: deterministic (same lock → same bytes). */
export function encodeLock(lock: Lock): string {
  const l = normaliseLock(lock);
  return `${HEADER}\n${stringify(l, { lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false, indentSeq: true })}`;
}

const HEX64 = /^[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Parse and check a lock's text; `source` names the file in errors. */
export function decodeLock(text: string, source = LOCK_FILE): Lock {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) throw new InputError(`${source}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, 'run `pi-image lock` to write it again');
  const raw = doc.toJS() as Record<string, unknown> | null;
  const bad = (what: string): never => {
    throw new InputError(`${source}: ${what}`, 'run `pi-image lock` to write it again');
  };
  if (!raw || typeof raw !== 'object') bad('is empty');
  if (raw!.lockVersion !== LOCK_VERSION) bad(`lockVersion ${String(raw!.lockVersion)} is not ${LOCK_VERSION}`);
  const str = (o: Record<string, unknown>, k: string, where: string, re?: RegExp): string => {
    const v = o[k];
    if (typeof v !== 'string' || (re && !re.test(v))) bad(`${where}.${k} is missing or malformed`);
    return v as string;
  };
  const num = (o: Record<string, unknown>, k: string, where: string): number => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${where}.${k} must be a byte count`);
    return v as number;
  };
  const list = (k: string): Record<string, unknown>[] => {
    const v = raw![k] ?? [];
    if (!Array.isArray(v)) bad(`${k} must be a list`);
    return v as Record<string, unknown>[];
  };
  const sum = (o: Record<string, unknown>, where: string): SumSource => {
    const v = o.sum;
    if (v !== 'published' && v !== 'profile' && v !== 'pinned-at-lock') bad(`${where}.sum must be published, profile or pinned-at-lock`);
    return v as SumSource;
  };
  const blob = (o: unknown, where: string): LockBlob => {
    const b = (o ?? {}) as Record<string, unknown>;
    return { digest: str(b, 'digest', where, DIGEST), size: num(b, 'size', where), mediaType: str(b, 'mediaType', where) };
  };
  const files = list('files').map((f, i): LockFile => {
    const w = `files[${i}]`;
    const kind = str(f, 'kind', w);
    if (!['binary', 'archive', 'manifest', 'data'].includes(kind)) bad(`${w}.kind must be binary, archive, manifest or data`);
    const a = f.archive as Record<string, unknown> | undefined;
    return {
      id: str(f, 'id', w),
      key: str(f, 'key', w),
      kind: kind as LockFile['kind'],
      url: str(f, 'url', w),
      ...(f.member !== undefined ? { member: str(f, 'member', w) } : {}),
      sha256: str(f, 'sha256', w, HEX64),
      size: num(f, 'size', w),
      sum: sum(f, w),
      ...(a ? { archive: { sha256: str(a, 'sha256', `${w}.archive`, HEX64), size: num(a, 'size', `${w}.archive`), sum: sum(a, `${w}.archive`) } } : {}),
    };
  });
  const images = list('images').map((m, i): LockImage => {
    const w = `images[${i}]`;
    if (!Array.isArray(m.layers)) bad(`${w}.layers must be a list`);
    return {
      id: str(m, 'id', w),
      key: str(m, 'key', w),
      platform: str(m, 'platform', w),
      ...(m.index !== undefined ? { index: str(m, 'index', w, DIGEST) } : {}),
      digest: str(m, 'digest', w, DIGEST),
      mediaType: str(m, 'mediaType', w),
      size: num(m, 'size', w),
      config: blob(m.config, `${w}.config`),
      layers: (m.layers as unknown[]).map((b, j) => blob(b, `${w}.layers[${j}]`)),
    };
  });
  const packages = list('packages').map((p, i): LockPackage => {
    const w = `packages[${i}]`;
    return {
      package: str(p, 'package', w),
      version: str(p, 'version', w),
      architecture: str(p, 'architecture', w),
      filename: str(p, 'filename', w),
      url: str(p, 'url', w),
      sha256: str(p, 'sha256', w, HEX64),
      size: num(p, 'size', w),
      ...(p.control !== undefined ? { control: controlOf(p.control, `${w}.control`) } : {}),
    };
  });
  function controlOf(v: unknown, where: string): Record<string, string> {
    if (!v || typeof v !== 'object' || Array.isArray(v)) bad(`${where} must be a map of Packages fields`);
    for (const [k, x] of Object.entries(v as object)) {
      if (!CONTROL_FIELDS.includes(k) || typeof x !== 'string' || x.includes('\n')) bad(`${where}.${k} is not one of ${CONTROL_FIELDS.join(', ')} with a one-line value`);
    }
    return v as Record<string, string>;
  }
  const rolesRaw = (raw!.roles ?? {}) as Record<string, Record<string, unknown>>;
  const ids = { files: new Set(files.map((f) => f.id)), images: new Set(images.map((m) => m.id)), packages: new Set(packages.map(packageId)) };
  const roles = Object.fromEntries(
    ROLES.map((r) => {
      const o = rolesRaw[r] ?? {};
      const pick = (k: 'files' | 'images' | 'packages'): string[] => {
        const v = o[k] ?? [];
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) bad(`roles.${r}.${k} must be a list of ids`);
        for (const id of v as string[]) if (!ids[k].has(id)) bad(`roles.${r}.${k} names ${id}, which is not in ${k}`);
        return v as string[];
      };
      return [r, { files: pick('files'), images: pick('images'), packages: pick('packages') }];
    }),
  ) as Lock['roles'];
  const requests = list('requests').map((q, i): LockRequest => {
    const w = `requests[${i}]`;
    const kind = str(q, 'kind', w);
    if (!['file', 'image', 'package'].includes(kind)) bad(`${w}.kind must be file, image or package`);
    const rs = q.roles;
    if (!Array.isArray(rs) || rs.some((x) => !ROLES.includes(x as Role))) bad(`${w}.roles must list master and/or worker`);
    return { id: str(q, 'id', w), key: str(q, 'key', w), input: str(q, 'input', w), kind: kind as LockRequest['kind'], roles: rs as Role[] };
  });
  return {
    lockVersion: LOCK_VERSION,
    inputs: str(raw!, 'inputs', 'lock', HEX64),
    platform: str(raw!, 'platform', 'lock', /^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/),
    files,
    images,
    packages,
    roles,
    requests,
  };
}

/**
 * Why a lock no longer fits the profile's requests, naming the first entry that differs; undefined when it fits.
 * Compares request by request (the digest alone could only say "something changed").
 */
export function staleReason(lock: Lock, requests: LockRequest[], platform?: string): string | undefined {
  if (platform && lock.platform !== platform) return `the lock is for ${lock.platform}, the base image is ${platform}`;
  if (lock.inputs === requestsDigest(requests)) return undefined;
  const had = new Map(lock.requests.map((r) => [r.id, r]));
  const want = new Map(requests.map((r) => [r.id, r]));
  for (const r of [...requests].sort(byId)) {
    const old = had.get(r.id);
    if (!old) return `entry ${r.id} (${r.key}) is not in the lock`;
    if (old.input !== r.input) return `entry ${r.id} (${r.key}) was locked as ${old.input}, the profile now says ${r.input}`;
    if (old.key !== r.key || [...old.roles].sort().join() !== [...r.roles].sort().join()) return `entry ${r.id} (${r.key}) changed roles or key`;
  }
  for (const r of [...lock.requests].sort(byId)) if (!want.has(r.id)) return `entry ${r.id} (${r.key}) is in the lock but no longer in the profile`;
  return 'its inputs digest does not match its requests (edited by hand?)';
}
