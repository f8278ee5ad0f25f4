// sha256 of a file (or a range of it) read through four reused 2 MiB buffers: no per-chunk allocations, so hashing
// a multi-GB file keeps memory flat, and the next chunks are read while the current one is hashed.
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import type { OnProgress } from '../progress.ts';

const CHUNK = 2 << 20;
const IN_FLIGHT = 4; // libuv's default thread pool size

/** Reusable read buffers for `scanRange`/`hashRange`: one being hashed while the others are read. */
export function hashBuffers(): Buffer[] {
  return Array.from({ length: IN_FLIGHT }, () => Buffer.allocUnsafe(CHUNK));
}

/**
 * Pass bytes [pos, end) of an open file to `fn` in order, chunk by chunk, with the next chunks being read (in
 * libuv's thread pool, one buffer each) while `fn` runs, so reads (page-cache copies, or zero-filling holes) and
 * hashing overlap across CPUs. `fn` returning false stops the scan. Returns the position reached: `end`, short of
 * it at end of file, or the start of the chunk that stopped it.
 */
export async function scanRange(fh: FileHandle, bufs: Buffer[], pos: number, end: number, fn: (chunk: Buffer) => boolean | void): Promise<number> {
  const inflight: { read: Promise<{ bytesRead: number }>; len: number }[] = []; // inflight[i] reads into bufs[(head + i) % n]
  let head = 0;
  let next = pos;
  const settle = async (): Promise<void> => {
    await Promise.allSettled(inflight.map((r) => r.read));
    inflight.length = 0;
  };
  const issue = (): void => {
    while (inflight.length < bufs.length && next < end) {
      const len = Math.min(CHUNK, end - next);
      inflight.push({ read: fh.read(bufs[(head + inflight.length) % bufs.length], 0, len, next), len });
      next += len;
    }
  };
  try {
    issue();
    while (inflight.length) {
      const { read, len } = inflight.shift()!;
      const { bytesRead } = await read;
      const buf = bufs[head];
      head = (head + 1) % bufs.length;
      if (bytesRead === 0) break;
      if (fn(buf.subarray(0, bytesRead)) === false) break;
      pos += bytesRead;
      if (bytesRead < len) {
        // A short read (end of file): drop the reads beyond it and go on from here.
        await settle();
        next = pos;
      }
      issue();
    }
  } finally {
    await settle(); // no read may still be writing into a buffer the caller reuses
  }
  return pos;
}

/** Feed bytes [pos, end) of an open file into `hash` (see scanRange); returns the position reached. */
export function hashRange(fh: FileHandle, hash: Hash, bufs: Buffer[], pos: number, end: number, onBytes?: (pos: number) => void): Promise<number> {
  let at = pos;
  return scanRange(fh, bufs, pos, end, (chunk) => {
    hash.update(chunk);
    at += chunk.length;
    onBytes?.(at);
  });
}

/** Feed the first `length` bytes of `path` (all of it when omitted) into `hash`; returns the bytes read. */
export async function hashInto(hash: Hash, path: string, opts: { length?: number; onProgress?: OnProgress; phase?: string } = {}): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const total = opts.length ?? (await fh.stat()).size;
    let last = 0;
    return await hashRange(fh, hash, hashBuffers(), 0, total, (pos) => {
      if (opts.onProgress && Date.now() - last > 200) {
        last = Date.now();
        opts.onProgress({ phase: opts.phase ?? 'hash', done: pos, total, unit: 'bytes', detail: basename(path) });
      }
    });
  } finally {
    await fh.close();
  }
}

/** The sha256 (hex) of a whole file. */
export async function sha256OfFile(path: string, onProgress?: OnProgress, phase?: string): Promise<string> {
  const h = createHash('sha256');
  await hashInto(h, path, { onProgress, phase });
  return h.digest('hex');
}
