// sha256 of a file (or a range of it) read through two reused 2 MiB buffers: no per-chunk allocations, so hashing a
// multi-GB file keeps memory flat, and the next read runs while the current chunk is hashed.
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import type { OnProgress } from '../progress.ts';

const CHUNK = 2 << 20;

/** Two reusable read buffers for `hashRange` (one being hashed while the other is read). */
export function hashBuffers(): [Buffer, Buffer] {
  return [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
}

/**
 * Feed bytes [pos, end) of an open file into `hash`, reading the next chunk (in libuv's thread pool) while the
 * current one is hashed, so reading and hashing overlap on two CPUs. Returns the position reached (short of `end`
 * only at end of file).
 */
export async function hashRange(fh: FileHandle, hash: Hash, bufs: [Buffer, Buffer], pos: number, end: number, onBytes?: (pos: number) => void): Promise<number> {
  let cur = 0;
  let pending = pos < end ? fh.read(bufs[0], 0, Math.min(CHUNK, end - pos), pos) : undefined;
  while (pending) {
    const { bytesRead } = await pending;
    if (bytesRead === 0) break;
    const next = pos + bytesRead;
    pending = next < end ? fh.read(bufs[cur ^ 1], 0, Math.min(CHUNK, end - next), next) : undefined;
    hash.update(bufs[cur].subarray(0, bytesRead));
    pos = next;
    cur ^= 1;
    onBytes?.(pos);
  }
  return pos;
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
