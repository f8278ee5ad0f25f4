// Sparse copying: byte-range arithmetic, fast all-zero tests, copying only chosen ranges between BlockIOs (holes
// elsewhere stay holes in a sparse target file), and finding the data blocks of a file by scanning it.
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import type { BlockIO } from './io.ts';
import type { OnProgress } from '../progress.ts';
import { OutOfBoundsError } from '../errors.ts';
import { dataExtents } from './extents.ts';

export interface ByteRange {
  start: number;
  length: number;
}

const ZERO_CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(ZERO_CHUNK);

/** Sort, drop empty ranges and merge overlapping or touching ones. Returns new objects. */
export function mergeRanges(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = ranges.filter((r) => r.length > 0).map((r) => ({ start: r.start, length: r.length }));
  sorted.sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev && r.start <= prev.start + prev.length) {
      prev.length = Math.max(prev.length, r.start + r.length - prev.start);
    } else out.push(r);
  }
  return out;
}

/** Widen every range to whole blocks of `blockSize` and merge; with `limit`, clip the ends to it (an image size). */
export function alignRanges(ranges: readonly ByteRange[], blockSize: number, limit?: number): ByteRange[] {
  const widened = ranges
    .filter((r) => r.length > 0)
    .map((r) => {
      const start = Math.floor(r.start / blockSize) * blockSize;
      let end = Math.ceil((r.start + r.length) / blockSize) * blockSize;
      if (limit !== undefined) end = Math.min(end, limit);
      return { start, length: end - start };
    });
  return mergeRanges(widened);
}

/** Total bytes in a list of ranges (assumed merged). */
export function rangesBytes(ranges: readonly ByteRange[]): number {
  return ranges.reduce((s, r) => s + r.length, 0);
}

/** True when every byte of `buf` is zero (memcmp against a shared zero buffer). */
export function isZero(buf: Uint8Array): boolean {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let off = 0; off < b.length; off += ZERO_CHUNK) {
    const n = Math.min(ZERO_CHUNK, b.length - off);
    if (!b.subarray(off, off + n).equals(n === ZERO_CHUNK ? ZEROS : ZEROS.subarray(0, n))) return false;
  }
  return true;
}

/** Call `fn(start, end)` for each maximal run of non-zero `blockSize` blocks of `buf` (offsets within buf). */
export function forEachDataRun(buf: Buffer, blockSize: number, fn: (start: number, end: number) => void): void {
  if (isZero(buf)) return;
  let runStart = -1;
  for (let off = 0; off < buf.length; off += blockSize) {
    const end = Math.min(off + blockSize, buf.length);
    const zero = isZero(buf.subarray(off, end));
    if (!zero && runStart < 0) runStart = off;
    if (zero && runStart >= 0) {
      fn(runStart, off);
      runStart = -1;
    }
  }
  if (runStart >= 0) fn(runStart, buf.length);
}

export interface CopyOptions {
  /** Added to every range's start when reading `src`. */
  srcOffset?: number;
  /** Added to every range's start when writing `dst`. */
  dstOffset?: number;
  /** Do not write blocks (of `blockSize`) that are all zeros: they stay holes in a fresh sparse target. */
  skipZeroBlocks?: boolean;
  blockSize?: number;
  /** I/O size in bytes (default 4 MiB); one buffer of this size is reused. */
  chunk?: number;
  onProgress?: OnProgress;
  phase?: string;
  detail?: string;
}

export interface CopyStats {
  bytesRead: number;
  bytesWritten: number;
}

/**
 * Copy `ranges` (byte ranges of `src`) to the same places in `dst` (shifted by the offsets). Nothing else in `dst`
 * is touched, so a freshly created sparse target keeps holes wherever no range was copied.
 */
export function copyRanges(src: BlockIO, dst: BlockIO, ranges: readonly ByteRange[], opts: CopyOptions = {}): CopyStats {
  const srcOffset = opts.srcOffset ?? 0;
  const dstOffset = opts.dstOffset ?? 0;
  const chunk = opts.chunk ?? 4 << 20;
  const blockSize = opts.blockSize ?? 4096;
  const merged = mergeRanges(ranges);
  const total = rangesBytes(merged);
  for (const r of merged) {
    if (r.start + srcOffset < 0 || r.start + srcOffset + r.length > src.size) {
      throw new OutOfBoundsError(`${src.name}: copy range ${r.start}+${r.length} is beyond its end (${src.size} bytes)`);
    }
    if (r.start + dstOffset < 0 || r.start + dstOffset + r.length > dst.size) {
      throw new OutOfBoundsError(`${dst.name}: copy range ${r.start}+${r.length} does not fit (${dst.size} bytes)`);
    }
  }
  const buffer = Buffer.allocUnsafe(Math.min(chunk, Math.max(total, 1)));
  const stats: CopyStats = { bytesRead: 0, bytesWritten: 0 };
  const phase = opts.phase ?? 'copy';
  let lastReport = 0;
  for (const r of merged) {
    for (let off = r.start; off < r.start + r.length; ) {
      const n = Math.min(buffer.length, r.start + r.length - off);
      const view = buffer.subarray(0, n);
      src.readInto(view, off + srcOffset);
      stats.bytesRead += n;
      if (opts.skipZeroBlocks) {
        forEachDataRun(view, blockSize, (s, e) => {
          dst.write(off + dstOffset + s, view.subarray(s, e));
          stats.bytesWritten += e - s;
        });
      } else {
        dst.write(off + dstOffset, view);
        stats.bytesWritten += n;
      }
      off += n;
      if (opts.onProgress && (stats.bytesRead - lastReport >= 64 << 20 || stats.bytesRead === total)) {
        lastReport = stats.bytesRead;
        opts.onProgress({ phase, done: stats.bytesRead, total, unit: 'bytes', detail: opts.detail });
      }
    }
  }
  return stats;
}

/**
 * The non-zero blocks of a file (or block device, given its size), found by reading its data extents (extents.ts:
 * holes are skipped unread) with one reused buffer. Adjacent data blocks are merged; the last range is clipped to
 * the file size.
 */
export function dataRangesOfFile(
  path: string,
  opts: { blockSize?: number; size?: number; chunk?: number; onProgress?: OnProgress; detail?: string } = {},
): ByteRange[] {
  const blockSize = opts.blockSize ?? 4096;
  const chunk = Math.max(blockSize, Math.floor((opts.chunk ?? 4 << 20) / blockSize) * blockSize);
  const fd = openSync(path, 'r');
  try {
    const size = opts.size ?? fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(chunk);
    const out: ByteRange[] = [];
    const add = (start: number, end: number) => {
      const prev = out[out.length - 1];
      if (prev && prev.start + prev.length === start) prev.length += end - start;
      else out.push({ start, length: end - start });
    };
    let lastReport = 0;
    const extents = dataExtents(path, { blockSize, size }) ?? [{ start: 0, length: size }];
    for (const x of extents) {
      for (let pos = x.start; pos < x.start + x.length; ) {
        let n = 0;
        const want = Math.min(chunk, x.start + x.length - pos);
        while (n < want) {
          const got = readSync(fd, buf, n, want - n, pos + n);
          if (got === 0) break;
          n += got;
        }
        if (n === 0) break;
        forEachDataRun(buf.subarray(0, n), blockSize, (s, e) => add(pos + s, pos + e));
        pos += n;
        if (opts.onProgress && (pos - lastReport >= 256 << 20 || pos >= size)) {
          lastReport = pos;
          opts.onProgress({ phase: 'scan', done: pos, total: size, unit: 'bytes', detail: opts.detail });
        }
      }
    }
    return out;
  } finally {
    closeSync(fd);
  }
}
