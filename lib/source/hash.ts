// sha256 of a file (or its first N bytes) read through one reused 1 MiB buffer: no per-chunk allocations, so
// hashing a multi-GB file keeps memory flat.
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { OnProgress } from '../progress.ts';

/** Feed the first `length` bytes of `path` (all of it when omitted) into `hash`; returns the bytes read. */
export async function hashInto(hash: Hash, path: string, opts: { length?: number; onProgress?: OnProgress; phase?: string } = {}): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const total = opts.length ?? (await fh.stat()).size;
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = 0;
    let last = 0;
    while (pos < total) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, total - pos), pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
      if (opts.onProgress && Date.now() - last > 200) {
        last = Date.now();
        opts.onProgress({ phase: opts.phase ?? 'hash', done: pos, total, unit: 'bytes', detail: basename(path) });
      }
    }
    return pos;
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
