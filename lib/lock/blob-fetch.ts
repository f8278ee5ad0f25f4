// Resumable, verified fetch of a content-addressed blob into `dest`: bytes go to `<dest>.partial`, an interrupted
// fetch resumes with `Range` from what is on disk (re-hashed first), and only bytes whose sha256 and size match the
// digest are renamed to `dest`. The request itself is the caller's (registry auth, redirects): `get(range)`.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** What is read of an HTTP response (node-fetch's Response has it); kept here so the public types name no
 *  node-fetch. */
export interface HttpResponse {
  status: number;
  statusText: string;
  ok: boolean;
  headers: { get(name: string): string | null };
  body: NodeJS.ReadableStream | null;
  arrayBuffer(): Promise<ArrayBuffer>;
  json(): Promise<unknown>;
}
import { hashInto } from '../source/hash.ts';
import { VerifyError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';

export interface BlobFetchOptions {
  dest: string;
  /** sha256:<hex> */
  digest: string;
  size: number;
  /** One GET; `range` is "bytes=N-" when resuming. */
  get: (range?: string) => Promise<HttpResponse>;
  what: string;
  retries?: number;
  backoffMs?: number;
  onProgress?: OnProgress;
}

const WRITE_BUF = 1 << 20;

/** Fetch the blob unless `dest` is there already (it is then trusted: the store only ever renames verified bytes). */
export async function fetchBlob(o: BlobFetchOptions): Promise<{ fetched: number }> {
  if (existsSync(o.dest)) return { fetched: 0 };
  const partial = `${o.dest}.partial`;
  const fd = openSync(partial, 'a+');
  let offset = fstatSync(fd).size;
  let hash = createHash('sha256');
  let fetched = 0;
  let lastReport = 0;
  const gather = Buffer.allocUnsafe(WRITE_BUF);
  let pending = 0;
  const flush = (): void => {
    for (let w = 0; w < pending; ) w += writeSync(fd, gather, w, pending - w);
    pending = 0;
  };
  const retries = o.retries ?? 5;
  try {
    if (offset > o.size) {
      ftruncateSync(fd, 0);
      offset = 0;
    }
    if (offset > 0) await hashInto(hash, partial, { length: offset });
    let failures = 0;
    while (offset < o.size || o.size === 0) {
      const before = offset;
      try {
        const res = await o.get(offset > 0 ? `bytes=${offset}-` : undefined);
        if (res.status === 200 && offset > 0) {
          ftruncateSync(fd, 0);
          offset = 0;
          hash = createHash('sha256');
        } else if (res.status !== 200 && res.status !== 206) {
          await res.arrayBuffer().catch(() => undefined);
          throw Object.assign(new Error(`HTTP ${res.status} ${res.statusText}`), { status: res.status });
        }
        // Chunks gather into 1 MiB writes (fewer syscalls); flushed before any retry, so the file holds `offset`.
        try {
          for await (const chunk of res.body!) {
            const buf = chunk as Buffer;
            if (offset + buf.length > o.size) throw new VerifyError(`${o.what}: more than the ${o.size} bytes its digest ${o.digest} names`);
            hash.update(buf);
            if (pending + buf.length > WRITE_BUF) flush();
            if (buf.length >= WRITE_BUF) for (let w = 0; w < buf.length; ) w += writeSync(fd, buf, w, buf.length - w);
            else {
              buf.copy(gather, pending);
              pending += buf.length;
            }
            offset += buf.length;
            fetched += buf.length;
            const t = Date.now();
            if (o.onProgress && (t - lastReport > 200 || offset === o.size)) {
              lastReport = t;
              o.onProgress({ phase: 'fetch', done: offset, total: o.size, unit: 'bytes', detail: o.what });
            }
          }
        } finally {
          flush();
        }
        if (o.size === 0) break;
      } catch (err) {
        if (err instanceof VerifyError) {
          ftruncateSync(fd, 0);
          throw err;
        }
        const status = (err as { status?: number }).status;
        if (status !== undefined && status < 500 && status !== 408 && status !== 429) throw err;
        failures = offset > before ? 0 : failures + 1;
        if (failures > retries) throw err;
        await sleep(Math.min(30_000, (o.backoffMs ?? 1000) * 2 ** Math.max(0, failures - 1)));
      }
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== o.digest || offset !== o.size) {
      ftruncateSync(fd, 0);
      closeSync(fd);
      rmSync(partial, { force: true });
      throw new VerifyError(`${o.what}: sha256 mismatch: expected ${o.digest} (${o.size} bytes), got ${got} (${offset} bytes); nothing kept`);
    }
    closeSync(fd);
    renameSync(partial, o.dest);
    return { fetched };
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* closed above */
    }
    throw err;
  }
}
