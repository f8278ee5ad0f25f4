// `lock`: resolve everything a profile's nodes fetch at first boot, for the base image's platform, and write
// pi-image.lock beside the profile (temporary name, then rename). Files are downloaded into the blob store and
// checked; images are resolved to their platform manifest (manifest and config kept, layers fetched by `build`);
// OS packages come from a PackageResolver when one is given. Any refusal stops it before anything is written.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadProfile, type Profile } from '../cluster/profile.ts';
import { resolveImage } from '../source/resolve.ts';
import { FileIO } from '../image/io.ts';
import type { OnProgress } from '../progress.ts';
import { InputError } from '../errors.ts';
import { LOCK_FILE, ROLES, decodeLock, encodeLock, normaliseLock, packageId, requestsDigest, type Lock, type LockFile, type LockImage, type LockRequest, type PackageResolver, type Role } from './lockfile.ts';
import { BlobStore } from './store.ts';
import { lockFile } from './files.ts';
import { profileRequests, addonManifestImages } from './requests.ts';
import { RegistryClient, formatPlatform } from './registry.ts';
import { parseImageRef } from './reference.ts';
import { platformOfImage, type ImagePlatform } from './platform.ts';
import { BlobFetcher, ensureLocked } from './fetch.ts';

export interface LockOptions {
  profile?: string;
  /** Base image (default: the profile's). */
  image?: string;
  cacheDir?: string;
  mirror?: string;
  onProgress?: OnProgress;
  /** Resolves the apt packages (lib/lock/apt/); without one the lock has no packages. */
  packages?: PackageResolver;
  /** Package names per role, for the resolver (default: firstboot's list plus apt.packages, packageNamesByRole). */
  packageNames?: (p: Profile) => Record<Role, string[]>;
  /** Resolve the OS packages with the apt resolver over the base image (aptResolver) when `packages` is not given. */
  apt?: boolean;
  retries?: number;
  backoffMs?: number;
  /** Also fetch every layer (and package) into the cache now, as `build` would. */
  fetch?: boolean;
}

export interface LockResult {
  path: string;
  lock: Lock;
  text: string;
  /** false when the file already held exactly these bytes. */
  changed: boolean;
  /** Bytes fetched into the cache by `fetch`. */
  fetched?: number;
  platform: ImagePlatform;
}

export const lockPathFor = (profilePath: string): string => join(dirname(profilePath), LOCK_FILE);

/** The platform of the profile's (or the given) base image, resolving it into the cache if needed. */
export async function basePlatform(src: string, opts: { cacheDir?: string; mirror?: string; onProgress?: OnProgress }): Promise<ImagePlatform> {
  const img = await (await resolveImage(src, { cacheDir: opts.cacheDir, mirror: opts.mirror, onProgress: opts.onProgress })).done;
  const io = FileIO.open(img.path);
  try {
    return platformOfImage(io, img.entry?.boot);
  } finally {
    io.close();
  }
}

export async function makeLock(opts: LockOptions = {}): Promise<LockResult> {
  const { profile, profilePath } = await loadProfile(opts.profile);
  const platform = await basePlatform(opts.image ?? profile.image, opts);
  const store = new BlobStore(opts.cacheDir);
  const ctx = { store, architecture: platform.architecture, retries: opts.retries, backoffMs: opts.backoffMs, onProgress: opts.onProgress };
  const req = profileRequests(profile);
  const requests: LockRequest[] = [...req.all];

  const files: LockFile[] = [];
  const roles: Record<Role, { files: string[]; images: string[]; packages: string[] }> = { master: { files: [], images: [], packages: [] }, worker: { files: [], images: [], packages: [] } };
  const wanted = new Map<string, { key: string; roles: Set<Role> }>();
  const want = (id: string, key: string, rs: Role[]) => {
    const w = wanted.get(id) ?? { key, roles: new Set<Role>() };
    rs.forEach((r) => w.roles.add(r));
    wanted.set(id, w);
  };
  // Resolved four at a time (each is a few round trips), then taken in request order: the lock stays the same.
  // Requests for the same URL (two members of one archive) run one after the other: they share a download.
  const byUrl = new Map<string, number[]>();
  req.files.forEach((f, i) => byUrl.set(f.url, [...(byUrl.get(f.url) ?? []), i]));
  const lockedFiles: LockFile[] = new Array(req.files.length);
  await inPool([...byUrl.values()], 4, async (group) => {
    for (const i of group) lockedFiles[i] = await lockFile(req.files[i]!, ctx);
  });
  for (const [i, f] of req.files.entries()) {
    const entry = lockedFiles[i]!;
    files.push(entry);
    f.roles.forEach((r) => roles[r].files.push(entry.id));
    if (entry.kind === 'manifest') {
      // Add-on pods run on every node (DaemonSets, and Deployments scheduled anywhere): their images go to all roles.
      for (const { id, key } of addonManifestImages(profile, entry.key, readFileSync(store.path(entry.sha256), 'utf8'))) want(id, key, ROLES);
    }
  }
  for (const i of req.images) want(i.id, i.key, i.roles);

  const client = new RegistryClient({ retries: opts.retries, backoffMs: opts.backoffMs, onProgress: opts.onProgress });
  const images: LockImage[] = [];
  let n = 0;
  const sorted = [...wanted].sort(([a], [b]) => (a < b ? -1 : 1));
  // With `fetch`, each image's layers start downloading as soon as it is resolved (content-addressed and verified,
  // so a later refusal leaves only good blobs behind), while the other images are still being resolved.
  const blobs = opts.fetch ? new BlobFetcher(store, client) : undefined;
  let resolvedImages: Omit<LockImage, 'key'>[];
  try {
    resolvedImages = await inPool(sorted, 4, async ([id, w]) => {
      const r = await client.resolveImage(parseImageRef(id), platform.platform, { key: w.key }, (_d, bytes) => store.put(bytes));
      opts.onProgress?.({ phase: 'resolve images', done: ++n, total: wanted.size, unit: 'items', detail: id });
      blobs?.add([{ ...r, key: w.key }]);
      return r;
    });
  } catch (err) {
    await blobs?.settle();
    throw err;
  }
  for (const [i, [, w]] of sorted.entries()) {
    const resolved = resolvedImages[i]!;
    images.push({ ...resolved, key: w.key });
    w.roles.forEach((r) => roles[r].images.push(resolved.id));
  }

  let packages: Lock['packages'] = [];
  try {
    // The apt modules (OpenPGP among them) only when packages are resolved: `--no-apt` starts faster.
    const apt = opts.packages || opts.apt ? await import('./apt-packages.ts') : undefined;
    const resolver: PackageResolver | undefined = opts.packages ?? (opts.apt ? apt!.aptResolver({ image: opts.image ?? profile.image, profile, cacheDir: opts.cacheDir, mirror: opts.mirror, onProgress: opts.onProgress }) : undefined);
    const names = resolver ? (opts.packageNames ?? apt!.packageNamesByRole)(profile) : undefined;
    if (resolver && names && ROLES.some((r) => names[r].length > 0)) {
      requests.push(...apt!.packageRequests(names));
      const res = await resolver({ roles: names, architecture: platform.architecture });
      packages = res.packages;
      const known = new Set(packages.map(packageId));
      for (const r of ROLES) {
        for (const id of res.roles[r]) if (!known.has(id)) throw new InputError(`the package resolver listed ${id} for ${r} but returned no entry for it`);
        roles[r].packages = res.roles[r];
      }
    }
  } catch (err) {
    await blobs?.settle();
    throw err;
  }
  const merged = mergeRequests(requests);
  const lock: Lock = { lockVersion: 1, inputs: requestsDigest(merged), platform: formatPlatform(platform.platform), files, images, packages, roles, requests: merged };
  const text = encodeLock(lock);
  const path = lockPathFor(profilePath);
  const changed = !existsSync(path) || readFileSync(path, 'utf8') !== text;
  if (changed) {
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  }
  // The layers started above (the lock is written first: a failed download leaves a good lock to fetch from).
  const fetched = blobs ? (await blobs.done()) + (await ensureLocked(lock, { cacheDir: opts.cacheDir, onProgress: opts.onProgress, retries: opts.retries, backoffMs: opts.backoffMs })) : undefined;
  // The lock as its text reads back (normalised), without parsing that text again (YAML costs ~0.3 s here).
  return { path, lock: normaliseLock(lock), text, changed, platform, ...(fetched !== undefined ? { fetched } : {}) };
}

/** One request per id (package names asked by both roles become one request with both). */
function mergeRequests(rs: LockRequest[]): LockRequest[] {
  const m = new Map<string, LockRequest>();
  for (const r of rs) {
    const had = m.get(r.id);
    if (had) had.roles = [...new Set([...had.roles, ...r.roles])];
    else m.set(r.id, { ...r, roles: [...r.roles] });
  }
  return [...m.values()];
}

/** Read the lock beside a profile; undefined when there is none. */
export function readLock(profilePath: string): { path: string; lock: Lock } | undefined {
  const path = lockPathFor(profilePath);
  if (!existsSync(path)) return undefined;
  return { path, lock: decodeLock(readFileSync(path, 'utf8'), path) };
}

/**
 * `fn` over `items`, at most `limit` at a time; results in the items' order. After a failure nothing new starts,
 * the running ones are waited for (no download outlives the call), then the first failure is thrown.
 */
async function inPool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed: { err: unknown } | undefined;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length && !failed; i = next++) {
        try {
          out[i] = await fn(items[i]!);
        } catch (err) {
          failed ??= { err };
        }
      }
    }),
  );
  if (failed) throw failed.err;
  return out;
}
