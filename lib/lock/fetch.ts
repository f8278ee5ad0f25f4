// `build`'s side of the lock: check it still fits the profile (naming the stale entry), fetch into the blob store
// what it lacks (files through lib/source, image manifests and blobs through the registry client; resumable and
// verified), or with `offline` refuse anything missing by name. Nothing unverified enters the store.
import type { Profile } from '../cluster/profile.ts';
import { InputError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { LockRefusal } from './errors.ts';
import { ensureFile } from './files.ts';
import { staleReason, type Lock, type LockImage } from './lockfile.ts';
import { RegistryClient } from './registry.ts';
import { parseImageRef, registryBase } from './reference.ts';
import { profileRequests } from './requests.ts';
import { BlobStore } from './store.ts';

/** Refuse a lock that no longer matches the profile, naming the entry. */
export async function checkFresh(lock: Lock, lockPath: string, profile: Profile): Promise<void> {
  // A lock made with the apt resolver (it has package requests) is checked against the profile's package list too
  // (the apt modules, OpenPGP among them, are loaded only then: a build without packages starts faster).
  const apt = lock.requests.some((r) => r.kind === 'package') || profile.apt.packages.length > 0;
  const packages = apt ? await import('./apt-packages.ts').then((m) => m.packageRequests(m.packageNamesByRole(profile))) : [];
  const why = staleReason(lock, profileRequests(profile).all.concat(packages));
  if (why) throw new InputError(`${lockPath} is stale: ${why}`, 'run `pi-image lock` and review the diff');
}

export interface EnsureOptions {
  cacheDir?: string;
  offline?: boolean;
  onProgress?: OnProgress;
  retries?: number;
  backoffMs?: number;
}

/**
 * The blobs of images into the store, each digest once (images share layers), a few at a time: on two cores three
 * streams keep the link, the hash and the disk busy at once, and the big layers of different images overlap.
 * Images can be added while earlier ones download (lock --fetch adds each as it resolves). After a failure nothing
 * new starts and the running ones finish (no download outlives done()), then done() throws the first failure;
 * settle() (a refusal elsewhere) stops the running ones at their next piece, leaving them resumable.
 */
export class BlobFetcher {
  private readonly queue: (() => Promise<void>)[] = [];
  private readonly seen = new Set<string>();
  private running = 0;
  private fetched = 0;
  private failed: { err: unknown } | undefined;
  private idle: (() => void)[] = [];
  private readonly stop = new AbortController();
  constructor(
    private readonly store: BlobStore,
    private readonly client: RegistryClient,
    private readonly limit = 3,
  ) {}
  add(images: Pick<LockImage, 'id' | 'key' | 'digest' | 'size' | 'mediaType' | 'config' | 'layers'>[]): void {
    for (const img of images) {
      const ref = parseImageRef(img.id);
      const ctx = { what: `image ${img.id}`, key: img.key };
      for (const b of [{ digest: img.digest, size: img.size, mediaType: img.mediaType }, img.config, ...img.layers]) {
        if (this.seen.has(b.digest) || this.store.has(b.digest)) continue;
        this.seen.add(b.digest);
        this.queue.push(async () => {
          if (b.digest === img.digest) this.store.put((await this.client.manifest(ref, img.digest, ctx)).bytes);
          else {
            const n = await this.client.blobToFile(ref, b, this.store.path(b.digest), ctx, this.stop.signal); // (not `+= await`: it races)
            this.fetched += n;
          }
        });
      }
    }
    while (this.running < this.limit && this.queue.length && !this.failed) this.runOne();
  }
  private runOne(): void {
    const job = this.queue.shift()!;
    this.running++;
    job()
      .catch((err: unknown) => {
        this.failed ??= { err };
      })
      .finally(() => {
        this.running--;
        if (this.queue.length && !this.failed) this.runOne();
        else if (this.running === 0) for (const f of this.idle.splice(0)) f();
      });
  }
  /** Wait for everything added; the bytes fetched, or the first failure. */
  async done(): Promise<number> {
    if (this.running > 0) await new Promise<void>((r) => this.idle.push(r));
    if (this.failed) throw this.failed.err;
    return this.fetched;
  }
  /** Stop the running fetches (after a failure elsewhere; their `.partial`s stay to resume) and wait for them. */
  async settle(): Promise<void> {
    this.failed ??= { err: new Error('stopped') };
    this.stop.abort(new Error('stopped'));
    if (this.running > 0) await new Promise<void>((r) => this.idle.push(r));
  }
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
  const blobs = new BlobFetcher(store, new RegistryClient({ retries: opts.retries, backoffMs: opts.backoffMs, onProgress: opts.onProgress }));
  for (const img of lock.images) {
    const missing = [img.digest, img.config.digest, ...img.layers.map((l) => l.digest)].filter((d) => !store.has(d));
    if (missing.length && opts.offline) {
      const ref = parseImageRef(img.id);
      throw new LockRefusal(`image ${img.id}`, `${registryBase(ref.registry)}/v2/${ref.name}/blobs/${missing[0]!}`, img.key, `${missing.length} blob(s) not in the cache and --offline was given`, 'run `pi-image build` once without --offline to fetch them');
    }
  }
  for (const img of lock.images) blobs.add([img]);
  fetched += await blobs.done();
  for (const p of lock.packages) {
    if (!store.has(p.sha256)) {
      if (opts.offline) throw new LockRefusal(`package ${p.package}`, p.url, 'apt.packages', 'not in the cache and --offline was given', 'run `pi-image build` once without --offline');
      await ensureFile({ id: `package ${p.package}`, key: 'apt.packages', kind: 'data', url: p.url, sha256: p.sha256, size: p.size, sum: 'published' }, { store, architecture: arch, retries: opts.retries, backoffMs: opts.backoffMs, onProgress: opts.onProgress });
      fetched += p.size;
    }
  }
  return fetched;
}
