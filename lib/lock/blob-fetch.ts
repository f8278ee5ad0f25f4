// Resumable, verified fetch of a content-addressed blob into `dest`: bytes go to `<dest>.partial`, an interrupted
// fetch resumes with `Range` from what is on disk (re-hashed first), and only bytes whose sha256 and size match the
// digest are renamed to `dest`. The request itself is the caller's (registry auth, redirects): `get(range)`.
// One pass over the bytes: the body is copied into one of two 2 MiB buffers; a full one is written (at its file
// offset, in libuv's pool) and hashed (on the hashing thread, hash-thread.ts) while the other fills, so the disk,
// the hash and the socket overlap on two cores; the socket is held back when both are busy. Memory: those two
// buffers per fetch.
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, renameSync, rmSync, write, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BodyResponse } from './blob-http.ts';

import { ThreadHash } from './hash-thread.ts';
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

const WRITE_BUF = 2 << 20;
/** A buffer with less room than this is sent on (a socket read is at most 256 KiB, see blob-http.ts). */
const LOW_ROOM = 512 << 10;

/** Buffers of finished fetches, for the next ones (shared memory is freed late by the GC: reuse keeps it flat). */
const spare: SharedArrayBuffer[] = [];
const MAX_SPARE = 8;

/**
 * Bytes gathered into two shared 2 MiB buffers: a full one goes to disk (a positional write in libuv's pool) and
 * to the hashing thread at once, while the other fills; it is reused when both are done with it.
 */
class Writer {
  private readonly bufs = [spare.pop() ?? new SharedArrayBuffer(WRITE_BUF), spare.pop() ?? new SharedArrayBuffer(WRITE_BUF)];
  private cur = 0;
  private fill = 0;
  private inflight: Promise<unknown> | undefined;
  /** A write failed: a disk problem, not the network's, so not retried. */
  failed: Error | undefined;
  constructor(
    private readonly fd: number,
    /** File offset of the current buffer's first byte. */
    private at: number,
    private readonly hash: ThreadHash,
  ) {}
  /** Take `b` (copied now); a returned promise means: wait before the next push. */
  push(b: Buffer): void | Promise<void> {
    if (this.failed) throw this.failed;
    if (b.length > WRITE_BUF - this.fill) throw new Error(`a piece of ${b.length} bytes is more than the write buffer has room for`);
    b.copy(Buffer.from(this.bufs[this.cur]!), this.fill);
    this.fill += b.length;
    if (WRITE_BUF - this.fill >= LOW_ROOM) return;
    const prev = this.inflight;
    this.send();
    // The buffer to fill next is the one sent before: free once it is written and hashed.
    return prev?.then(() => undefined);
  }
  /** Everything pushed is on disk and hashed (the file holds exactly the bytes pushed). */
  async flush(): Promise<void> {
    await this.inflight?.catch(() => undefined);
    this.inflight = undefined;
    if (this.fill > 0) await this.send();
    if (this.failed) throw this.failed;
  }
  /** Done with it (flushed, or given up): its buffers go to the next fetch once nothing reads them. */
  release(): void {
    const bufs = this.bufs.splice(0);
    void (this.inflight ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        for (const b of bufs) if (spare.length < MAX_SPARE) spare.push(b);
      });
  }
  /** Write and hash the current buffer, and switch to the other one. */
  private send(): Promise<void> {
    const sab = this.bufs[this.cur]!;
    const buf = Buffer.from(sab);
    const len = this.fill;
    const at = this.at;
    this.at += len;
    this.fill = 0;
    this.cur = 1 - this.cur;
    const written = new Promise<void>((resolve, reject) => {
      const step = (done: number): void => {
        if (done === len) return resolve();
        write(this.fd, buf, done, len - done, at + done, (err, n) => {
          if (err) reject((this.failed = err));
          else step(done + n);
        });
      };
      step(0);
    });
    const both = Promise.all([written, this.hash.update(sab, len)]);
    // inflight: everything sent so far is written and hashed.
    const all = (this.inflight ? Promise.all([this.inflight, both]) : both).then(() => undefined);
    all.catch(() => undefined);
    this.inflight = all;
    return all;
  }
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
      let w: Writer | undefined;
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
        const writer = (w = new Writer(fd, offset, hash));
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
