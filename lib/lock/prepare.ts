// A lock turned into each role's bundle plan, for every pipeline that carries the bundle (build's SSD partition 2,
// netboot's NFS root): the lock checked against the profile, what the cache lacks fetched (or, offline, refused),
// the image archives made, then one plan per role (bundle.ts).
// Invariants: nothing is planned from an unverified blob; a stale lock is refused naming its entry.
import type { Profile } from '../cluster/profile.ts';
import type { OnProgress } from '../progress.ts';
import { planBundle, type BundlePlan } from './bundle.ts';
import { checkFresh, ensureLocked } from './fetch.ts';
import { imageArchive, type ImageArchive } from './image-archive.ts';
import type { Lock } from './lockfile.ts';
import { BlobStore } from './store.ts';

export interface PrepareOptions {
  cacheDir?: string;
  offline?: boolean;
  onProgress?: OnProgress;
}

/** Check the lock, fetch what the cache lacks, make the image archives and each role's bundle plan. */
export async function prepareBundles(lock: Lock, lockPath: string, profile: Profile, opts: PrepareOptions = {}): Promise<Record<'master' | 'worker', BundlePlan>> {
  const onProgress = opts.onProgress ?? (() => {});
  await checkFresh(lock, lockPath, profile);
  await ensureLocked(lock, { cacheDir: opts.cacheDir, offline: opts.offline, onProgress });
  const store = new BlobStore(opts.cacheDir);
  const archives = new Map<string, ImageArchive>();
  let n = 0;
  for (const img of lock.images) {
    onProgress({ phase: 'image archives', done: n++, total: lock.images.length, unit: 'items', detail: img.id });
    archives.set(img.id, await imageArchive(img, store));
  }
  return { master: planBundle(lock, 'master', store, archives), worker: planBundle(lock, 'worker', store, archives) };
}
