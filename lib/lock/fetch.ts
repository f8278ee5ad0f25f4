// `build`'s side of the lock: check it still fits the profile (naming the stale entry), fetch into the blob store
// what it lacks (files through lib/source, image manifests and blobs through the registry client; resumable and
// verified), or with `offline` refuse anything missing by name. Nothing unverified enters the store.
import type { Profile } from '../cluster/profile.ts';
import { InputError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { LockRefusal } from './errors.ts';
import { ensureFile } from './files.ts';
import { staleReason, type Lock } from './lockfile.ts';
import { RegistryClient } from './registry.ts';
import { parseImageRef, registryBase } from './reference.ts';
import { profileRequests } from './requests.ts';
import { packageNamesByRole, packageRequests } from './apt-packages.ts';
import { BlobStore } from './store.ts';

/** Refuse a lock that no longer matches the profile, naming the entry. */
export function checkFresh(lock: Lock, lockPath: string, profile: Profile): void {
  // A lock made with the apt resolver (it has package requests) is checked against the profile's package list too.
  const apt = lock.requests.some((r) => r.kind === 'package') || profile.apt.packages.length > 0;
  const why = staleReason(lock, profileRequests(profile).all.concat(apt ? packageRequests(packageNamesByRole(profile)) : []));
  if (why) throw new InputError(`${lockPath} is stale: ${why}`, 'run `pi-image lock` and review the diff');
}

export interface EnsureOptions {
  cacheDir?: string;
  offline?: boolean;
  onProgress?: OnProgress;
  retries?: number;
  backoffMs?: number;
}

/** Make sure every entry of the lock is in the store; returns the bytes fetched. */
export async function ensureLocked(lock: Lock, opts: EnsureOptions = {}): Promise<number> {
  const store = new BlobStore(opts.cacheDir);
  store.ensure();
  const arch = lock.platform.split('/')[1] ?? '';
  let fetched = 0;
  for (const f of lock.files) {
    const had = store.has(f.sha256);
    await ensureFile(f, { store, architecture: arch, offline: opts.offline, retries: opts.retries, backoffMs: opts.backoffMs, onProgress: opts.onProgress });
    if (!had) fetched += f.size;
  }
  const client = new RegistryClient({ retries: opts.retries, backoffMs: opts.backoffMs, onProgress: opts.onProgress });
  // Missing blobs, each once (images share layers), fetched two at a time: a second stream keeps the link busy
  // while the first one's bytes are hashed and written.
  const jobs = new Map<string, () => Promise<void>>();
  for (const img of lock.images) {
    const ref = parseImageRef(img.id);
    const ctx = { what: `image ${img.id}`, key: img.key };
    const missing = [{ digest: img.digest, size: img.size, mediaType: img.mediaType }, img.config, ...img.layers].filter((b) => !store.has(b.digest));
    if (missing.length && opts.offline) {
      throw new LockRefusal(ctx.what, `${registryBase(ref.registry)}/v2/${ref.name}/blobs/${missing[0]!.digest}`, img.key, `${missing.length} blob(s) not in the cache and --offline was given`, 'run `pi-image build` once without --offline to fetch them');
    }
    for (const b of missing) {
      if (jobs.has(b.digest)) continue;
      jobs.set(b.digest, async () => {
        if (b.digest === img.digest) store.put((await client.manifest(ref, img.digest, ctx)).bytes);
        else {
          const n = await client.blobToFile(ref, b, store.path(b.digest), ctx); // (not `fetched += await …`: it races)
          fetched += n;
        }
      });
    }
  }
  const queue = [...jobs.values()];
  let failed: { err: unknown } | undefined;
  await Promise.all(
    Array.from({ length: Math.min(2, queue.length) }, async () => {
      for (let job = queue.shift(); job && !failed; job = queue.shift()) {
        try {
          await job();
        } catch (err) {
          failed ??= { err }; // the other fetch finishes first: no download outlives the call
        }
      }
    }),
  );
  if (failed) throw failed.err;
  for (const p of lock.packages) {
    if (!store.has(p.sha256)) {
      if (opts.offline) throw new LockRefusal(`package ${p.package}`, p.url, 'apt.packages', 'not in the cache and --offline was given', 'run `pi-image build` once without --offline');
      await ensureFile({ id: `package ${p.package}`, key: 'apt.packages', kind: 'data', url: p.url, sha256: p.sha256, size: p.size, sum: 'published' }, { store, architecture: arch, retries: opts.retries, backoffMs: opts.backoffMs, onProgress: opts.onProgress });
      fetched += p.size;
    }
  }
  return fetched;
}
