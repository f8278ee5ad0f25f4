// Resumable, verified fetch of a content-addressed blob into `dest`: bytes go to `<dest>.partial`, an interrupted
// fetch resumes with `Range` from what is on disk (re-hashed first), and only bytes whose sha256 and size match the
// digest are renamed to `dest`. The request itself is the caller's (registry auth, redirects): `get(range)`.
// One pass over the bytes, through a BodyWriter (source/body-writer.ts): written and hashed on the other core while
// the socket reads; the socket is held back when both buffers are busy. Memory: those two buffers per fetch.
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, renameSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BodyResponse } from '../source/http-body.ts';

import { ThreadHash } from '../source/hash-thread.ts';
import { BodyWriter } from '../source/body-writer.ts';
import { VerifyError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';

export interface BlobFetchOptions {
  dest: string;
  /** sha256:<hex> */
  digest: string;
  size: number;
  /** One GET; `range` is "bytes=N-" when resuming. */
  get: (range?: string) => Promise<BodyResponse>;
  what: string;
  retries?: number;
  backoffMs?: number;
  onProgress?: OnProgress;
  /** Stop (the `.partial` stays for a resume); the error thrown is the signal's reason. */
  signal?: AbortSignal;
}

/** Fetch the blob unless `dest` is there already (it is then trusted: the store only ever renames verified bytes). */
export async function fetchBlob(o: BlobFetchOptions): Promise<{ fetched: number }> {
  if (existsSync(o.dest)) return { fetched: 0 };
  const partial = `${o.dest}.partial`;
  closeSync(openSync(partial, 'a'));
  const fd = openSync(partial, 'r+'); // not append: the writes are positional
  let offset = fstatSync(fd).size;
  let hash = new ThreadHash();
  let fetched = 0;
  let lastReport = 0;
  const retries = o.retries ?? 5;
  try {
    if (offset > o.size) {
      ftruncateSync(fd, 0);
      offset = 0;
    }
    if (offset > 0) await hash.file(partial, offset);
    let failures = 0;
    while (offset < o.size || o.size === 0) {
      o.signal?.throwIfAborted();
      const before = offset;
      let w: BodyWriter | undefined;
      try {
        const res = await o.get(offset > 0 ? `bytes=${offset}-` : undefined);
        const from = res.status === 206 ? Number(/^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN) : 0;
        if ((res.status === 200 && offset > 0) || (res.status === 206 && from !== offset)) {
          // The whole blob again (Range ignored), or a range that is not the one asked for: start from zero.
          ftruncateSync(fd, 0);
          offset = 0;
          hash.drop();
          hash = new ThreadHash();
          if (res.status === 206) {
            res.discard();
            throw new Error(`asked for bytes=${before}-, the answer was ${res.headers.get('content-range') ?? 'no Content-Range'}`);
          }
        } else if (res.status !== 200 && res.status !== 206) {
          res.discard();
          throw Object.assign(new Error(`HTTP ${res.status} ${res.statusText}`), { status: res.status });
        }
        const writer = (w = new BodyWriter(fd, offset, hash));
        try {
          await res.read((buf) => {
            o.signal?.throwIfAborted();
            if (offset + buf.length > o.size) throw new VerifyError(`${o.what}: more than the ${o.size} bytes its digest ${o.digest} names`);
            const wait = writer.push(buf); // copied now (or thrown): only then counted
            offset += buf.length;
            fetched += buf.length;
            const t = Date.now();
            if (o.onProgress && (t - lastReport > 200 || offset === o.size)) {
              lastReport = t;
              o.onProgress({ phase: 'fetch', done: offset, total: o.size, unit: 'bytes', detail: o.what });
            }
            return wait;
          });
        } finally {
          try {
            await writer.flush(); // before any retry: the file holds exactly `offset` bytes, all of them hashed
          } finally {
            writer.release();
          }
        }
        if (o.size === 0) break;
      } catch (err) {
        if (err instanceof VerifyError) {
          ftruncateSync(fd, 0);
          throw err;
        }
        if (w?.failed || o.signal?.aborted) throw err; // the disk, not the network, or stopped: not asked again
        const status = (err as { status?: number }).status;
        if (status !== undefined && status < 500 && status !== 408 && status !== 429) throw err;
        failures = offset > before ? 0 : failures + 1;
        if (failures > retries) throw err;
        await sleep(Math.min(30_000, (o.backoffMs ?? 1000) * 2 ** Math.max(0, failures - 1)));
      }
    }
    const got = `sha256:${await hash.digest()}`;
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
    hash.drop();
    try {
      closeSync(fd);
    } catch {
      /* closed above */
    }
    throw err;
  }
}
