// One pass over a sparse image that we wrote ourselves: the sha256 of the whole file and the per-range sha256
// of its mapped blocks (for a bmap), reading only the mapped ranges and feeding zeros for the holes in between.
import { createHash, type Hash } from 'node:crypto';
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import type { OnProgress } from '../progress.ts';
import { toBlockRanges, type BmapRange } from './bmap.ts';

/** A mapped block range with its sha256 (bmaptool's convention: first and last block, inclusive). */
export type BlockRange = Required<BmapRange>;

export interface ImageDigest {
  size: number;
  blockSize: number;
  sha256: string;
  ranges: BlockRange[];
  mappedBlocks: number;
}

const CHUNK = 4 << 20;
const ZEROS = Buffer.alloc(CHUNK);

function feedZeros(hash: Hash, length: number): void {
  while (length > 0) {
    const n = Math.min(length, CHUNK);
    hash.update(n === CHUNK ? ZEROS : ZEROS.subarray(0, n));
    length -= n;
  }
}

/**
 * Hash `path`: the whole file (holes read as zeros, without reading them) and each mapped range.
 * The caller guarantees that everything outside `ranges` is zero (it wrote the image sparse).
 */
export function digestImage(
  path: string,
  ranges: { start: number; length: number }[],
  opts: { blockSize?: number; onProgress?: OnProgress; detail?: string } = {},
): ImageDigest {
  const blockSize = opts.blockSize ?? 4096;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const blocks = toBlockRanges(ranges, blockSize, size);
    const whole = createHash('sha256');
    const out: BlockRange[] = [];
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    let mapped = 0;
    let done = 0;
    const total = blocks.reduce((s, b) => s + Math.min(size, (b.last + 1) * blockSize) - b.first * blockSize, 0);
    for (const { first, last } of blocks) {
      const start = first * blockSize;
      const end = Math.min(size, (last + 1) * blockSize);
      feedZeros(whole, start - pos);
      const part = createHash('sha256');
      for (let off = start; off < end; ) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, end - off), off);
        if (n === 0) throw new Error(`${path}: unexpected end of file at ${off}`);
        const view = buf.subarray(0, n);
        whole.update(view);
        part.update(view);
        off += n;
        done += n;
        opts.onProgress?.({ phase: 'checksum', done, total, detail: opts.detail });
      }
      out.push({ first, last, checksum: part.digest('hex') });
      mapped += last - first + 1;
      pos = end;
    }
    feedZeros(whole, size - pos);
    return { size, blockSize, sha256: whole.digest('hex'), ranges: out, mappedBlocks: mapped };
  } finally {
    closeSync(fd);
  }
}

/** sha256 of a whole (small or dense) file, streaming. */
export function sha256File(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let off = 0; ; ) {
      const n = readSync(fd, buf, 0, CHUNK, off);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      off += n;
    }
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}
