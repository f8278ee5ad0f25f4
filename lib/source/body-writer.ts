// Where a download's body goes: gathered into two shared 2 MiB buffers; a full one is written at its file offset
// (in libuv's pool) and hashed (on the hashing thread, hash-thread.ts) at once while the other fills, so the
// socket, the disk and the hash overlap on two cores. Used by image and file downloads (download.ts) and registry
// blobs (lock/blob-fetch.ts).
// Invariants:
// - bytes reach the file and the hash in the order pushed; a buffer is refilled only once both are done with it;
// - no byte waits in a buffer for more than MAX_AGE_MS while the disk is idle, so a slow download's file still
//   grows as it comes (a tap follows it, a stall leaves it on disk);
// - after flush() the file holds exactly the bytes pushed, all of them hashed (and given to `onWritten`);
// - memory: two buffers per writer, kept for the next writer when it is released (shared memory is freed late).
import { write } from 'node:fs';
import type { ThreadHash } from './hash-thread.ts';
import { MAX_WRITE } from '../image/io.ts';

export const WRITE_BUF = 2 << 20;
/** A buffer with less room than this is sent on (a socket read is at most 256 KiB, see http-body.ts). */
const LOW_ROOM = 512 << 10;
const MAX_AGE_MS = 50;

/** Buffers of released writers, for the next ones. */
const spare: SharedArrayBuffer[] = [];
const MAX_SPARE = 8;

export class BodyWriter {
  private readonly bufs = [spare.pop() ?? new SharedArrayBuffer(WRITE_BUF), spare.pop() ?? new SharedArrayBuffer(WRITE_BUF)];
  private cur = 0;
  private fill = 0;
  private inflight: Promise<unknown> | undefined;
  /** Every buffer sent is written and hashed (the one to fill next is free). */
  private settled = true;
  /** When the current buffer got its first byte, and the timer that sends it if nothing fills it on. */
  private firstAt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** A write failed: a disk problem, not the network's, so not retried. */
  failed: Error | undefined;
  constructor(
    private readonly fd: number,
    /** File offset of the current buffer's first byte. */
    private at: number,
    private readonly hash: ThreadHash,
    /** Sees each sent buffer once it is on disk (a view, valid during the call); a promise holds the writer back. */
    private readonly onWritten?: (bytes: Buffer) => void | Promise<void>,
  ) {}
  /** Take `b` (copied now); a returned promise means: wait before the next push. */
  push(b: Buffer): void | Promise<void> {
    if (this.failed) throw this.failed;
    if (b.length > WRITE_BUF - this.fill) throw new Error(`a piece of ${b.length} bytes is more than the write buffer has room for`);
    if (this.fill === 0) {
      this.firstAt = Date.now();
      this.arm();
    }
    b.copy(Buffer.from(this.bufs[this.cur]!), this.fill);
    this.fill += b.length;
    if (WRITE_BUF - this.fill >= LOW_ROOM) {
      if (this.settled && Date.now() - this.firstAt >= MAX_AGE_MS) void this.send().catch(() => undefined); // a slow body
      return;
    }
    const prev = this.inflight;
    this.send();
    // The buffer to fill next is the one sent before: free once it is written and hashed.
    return prev?.then(() => undefined);
  }
  /** Everything pushed is on disk and hashed. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    await this.inflight?.catch(() => undefined);
    this.inflight = undefined;
    if (this.fill > 0) await this.send();
    if (this.failed) throw this.failed;
  }
  /** Done with it (flushed, or given up): its buffers go to the next writer once nothing reads them. */
  release(): void {
    clearTimeout(this.timer);
    const bufs = this.bufs.splice(0);
    void (this.inflight ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        for (const b of bufs) if (spare.length < MAX_SPARE) spare.push(b);
      });
  }
  /** Send the current buffer after MAX_AGE_MS if nothing fills it by then (once the other one is free). */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.fill === 0 || this.failed) return;
      if (this.settled) void this.send().catch(() => undefined);
      else this.arm();
    }, MAX_AGE_MS);
    this.timer.unref();
  }
  /** Write and hash the current buffer, and switch to the other one. */
  private send(): Promise<void> {
    clearTimeout(this.timer);
    this.settled = false;
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
        write(this.fd, buf, done, Math.min(MAX_WRITE, len - done), at + done, (err, n) => {
          if (err) reject((this.failed = err));
          else step(done + n);
        });
      };
      step(0);
    });
    // Each buffer is handed on after the ones before it (a tap reads the file in order).
    const before = this.inflight;
    const handed = this.onWritten ? Promise.all([written, before]).then(() => this.onWritten!(buf.subarray(0, len))) : written;
    const both = Promise.all([handed, this.hash.update(sab, len)]);
    // inflight: everything sent so far is written, hashed and handed on.
    const all = (before ? Promise.all([before, both]) : both).then(() => undefined);
    all.then(
      () => {
        if (this.inflight === all) this.settled = true;
      },
      () => undefined,
    );
    this.inflight = all;
    return all;
  }
}
