// The verify pass of a flash: read the mapped ranges of the target back and check them, against the bmap's
// checksums or, for a map made on the fly, against the image's bytes; a mismatch is located to its first byte.
// Invariants:
// - reads only; every failure is a FlashVerifyError naming the first bad byte offset (or the bmap that is wrong).
// - a device is read after its cache was dropped (flash.ts); a file may be checked while it is being written, by
//   workers trailing the writer (followingVerify), since a later read would see the same page cache.
// - from 64 MiB of mapped data on, the reading and hashing run on worker threads (hash-workers.ts).
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { FileIO } from '../image/io.ts';
import { bmapByteRanges, blockRangeBytes, scanAndHash, type Bmap, type BmapRange } from '../image/bmap.ts';
import { rangesBytes } from '../image/sparse.ts';
import { VerifyError, FlashVerifyError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { hashRangesParallel, compareRangesParallel, Watermark } from './hash-workers.ts';
import { loadBmap } from './bmap-input.ts';
import { CHUNK, HEAD_BYTES } from './copy.ts';
import { ticker } from './ticker.ts';

/** Verify hashes on worker threads from this many mapped bytes on. */
const PARALLEL_MIN = 64 << 20;
/** Pieces of at most this many bytes, so the workers share an extent list with one huge extent. */
const PIECE = 64 << 20;

export { FlashVerifyError } from '../errors.ts';

/** Where a following verify found the first difference (undefined: none). */
export type Mismatch = { range: BmapRange; start: number; length: number } | undefined;

/**
 * Plan the verify of a file target that trails its writer (see flash): workers read the target back in pieces
 * behind the writer. With a bmap whose ranges carry checksums, the target's ranges must hash to them: one pass that
 * checks both the write and the image against the bmap (bmaptool checks only the image), and no second read of the
 * image. Without checksums (a map made on the fly), the pieces must equal the image's (holes in both read as zeros).
 * Undefined when it is too small to be worth threads: then it is verified after writing.
 */
export function followingVerify(image: string, target: string, bmap: Bmap | undefined, extents: { start: number; length: number }[] | undefined, imageSize: number) {
  const hashed = bmap && bmap.checksumType !== 'none' && bmap.ranges.every((r) => r.checksum);
  const bs = bmap?.blockSize ?? 4096;
  const spans = bmap ? bmapByteRanges(bmap) : extents!;
  const pieces: { start: number; length: number }[] = [];
  for (const x of spans) {
    for (let off = x.start; off < x.start + x.length; off += PIECE) pieces.push({ start: off, length: Math.min(PIECE, x.start + x.length - off) });
  }
  const pieceBlocks = pieces.map((t) => ({ first: Math.floor(t.start / bs), last: Math.ceil((t.start + t.length) / bs) - 1 }));
  if (rangesBytes(pieces) < PARALLEL_MIN || pieces.length < 2 || availableParallelism() < 2) return undefined;
  const mark = new Watermark(Math.min(HEAD_BYTES, imageSize));
  // A range's sha256 cannot be split: hashing, the writer keeps one core and the hashers share the others.
  const hashers = Math.min(4, availableParallelism() - 1);
  let result!: Promise<Mismatch>;
  return {
    mark,
    get result() {
      return result;
    },
    /** Start the workers (once the target exists). */
    start() {
      result = (async (): Promise<Mismatch> => {
        if (hashed) {
          const sums = await hashRangesParallel(target, spans, { algorithm: bmap.checksumType, follow: mark, workers: hashers });
          const j = sums.findIndex((d, k) => d !== bmap.ranges[k].checksum);
          return j < 0 ? undefined : { range: bmap.ranges[j], start: spans[j].start, length: spans[j].length };
        }
        const same = await compareRangesParallel(target, image, pieces, { follow: mark });
        const i = same.indexOf(false);
        return i < 0 ? undefined : { range: pieceBlocks[i], start: pieces[i].start, length: pieces[i].length };
      })();
      result.catch(() => undefined);
    },
  };
}

/**
 * Check an already-written target against an image: every mapped range (from the bmap, or found by scanning the
 * image) must hash to the map's checksum. Throws FlashVerifyError naming the first bad byte.
 */
export async function verifyImage(opts: { image: string; target: string; bmap?: string | Bmap | false; onProgress?: OnProgress }): Promise<{ mappedBytes: number }> {
  const loaded = loadBmap(opts);
  const src = FileIO.open(opts.image);
  try {
    const imageSize = src.size;
    const blockSize = loaded.bmap?.blockSize ?? 4096;
    const ranges = loaded.bmap?.ranges ?? scanAndHash(src, imageSize, blockSize);
    await verifyTarget(src, opts.target, opts.target, ranges, {
      blockSize, imageSize, checksumType: loaded.bmap?.checksumType ?? 'sha256', onProgress: opts.onProgress, where: loaded.path,
    });
    return { mappedBytes: ranges.reduce((s, r) => s + blockRangeBytes(r, blockSize, imageSize).length, 0) };
  } finally {
    src.close();
  }
}

/**
 * Read every mapped range of the target back and compare its checksum with the map (or, for ranges without a
 * checksum, with the image). On a mismatch, compare byte by byte with the image to name the first bad offset.
 * The target is read as the image's length (a device is larger).
 */
export async function verifyTarget(
  image: FileIO,
  targetPath: string,
  targetName: string,
  ranges: BmapRange[],
  o: { blockSize: number; imageSize: number; checksumType: string; chunk?: number; onProgress?: OnProgress; detail?: string; where?: string },
): Promise<void> {
  const target = openTarget(targetPath, targetName, o.imageSize);
  try {
    const buf = Buffer.allocUnsafe(o.chunk ?? CHUNK);
    const other = Buffer.allocUnsafe(buf.length);
    const total = ranges.reduce((s, r) => s + blockRangeBytes(r, o.blockSize, o.imageSize).length, 0);
    const tick = ticker(o.onProgress, 'verify', total, o.detail);
    let done = 0;
    const hashed = o.checksumType !== 'none' && ranges.every((r) => r.checksum);
    if (total >= PARALLEL_MIN && ranges.length > 1 && availableParallelism() > 1) {
      // One core cannot keep up with sha256 (or read two files) at disk speed: check the ranges on several. With
      // checksums, the target's ranges must hash to them; without, they must equal the image's bytes.
      const tasks = ranges.map((r) => blockRangeBytes(r, o.blockSize, o.imageSize));
      const onBytes = (n: number) => {
        done += n;
        void tick(done);
      };
      const good = hashed
        ? (await hashRangesParallel(targetPath, tasks, { algorithm: o.checksumType, onBytes })).map((d, i) => d === ranges[i].checksum)
        : await compareRangesParallel(targetPath, image.name, tasks, { onBytes });
      const bad = good.indexOf(false);
      if (bad >= 0) locateMismatch(image, target, ranges[bad], tasks[bad].start, tasks[bad].length, buf, other, o.where ?? 'bmap');
      await tick(total, true);
      return;
    }
    for (const r of ranges) {
      const { start, length } = blockRangeBytes(r, o.blockSize, o.imageSize);
      const h = r.checksum && o.checksumType !== 'none' ? createHash(o.checksumType) : undefined;
      let equalToImage = true;
      for (let off = start; off < start + length; ) {
        const view = buf.subarray(0, Math.min(buf.length, start + length - off));
        target.readInto(view, off);
        if (h) h.update(view);
        else {
          const img = other.subarray(0, view.length);
          image.readInto(img, off);
          if (!img.equals(view)) equalToImage = false;
        }
        off += view.length;
        done += view.length;
        await tick(done);
      }
      const ok = h ? h.digest('hex') === r.checksum : equalToImage;
      if (!ok) locateMismatch(image, target, r, start, length, buf, other, o.where ?? 'bmap');
    }
    await tick(done, true);
  } finally {
    target.close();
  }
}

/** The target read-only, as `imageSize` bytes, named `name` in errors. */
export function openTarget(path: string, name: string, imageSize: number): FileIO {
  return FileIO.open(path, { size: imageSize, name });
}

/** Compare target and image byte by byte over one range; throws FlashVerifyError at the first difference, or, when
 *  they are equal, one saying the map's checksum is wrong for the image. */
export function locateMismatch(image: FileIO, target: FileIO, r: BmapRange, start: number, length: number, a: Buffer, b: Buffer, where: string): never {
  for (let off = start; off < start + length; ) {
    const n = Math.min(a.length, start + length - off);
    const t = a.subarray(0, n);
    const i = b.subarray(0, n);
    target.readInto(t, off);
    image.readInto(i, off);
    if (!t.equals(i)) {
      let k = 0;
      while (t[k] === i[k]) k++;
      const at = off + k;
      throw new FlashVerifyError(
        `verify failed: ${target.name} differs from ${image.name} at byte offset ${at} (0x${at.toString(16)}; blocks ${r.first}-${r.last}): ` +
          `wrote 0x${i[k].toString(16).padStart(2, '0')}, read back 0x${t[k].toString(16).padStart(2, '0')}`,
        at,
        'The card or disk may be failing, or something else wrote to it; try again or use another one.',
      );
    }
    off += n;
  }
  throw new FlashVerifyError(
    `verify failed: ${image.name} does not match ${where} in blocks ${r.first}-${r.last} (the target holds exactly the image's bytes)`,
    start,
    'The bmap belongs to another version of the image: make it again, or flash without --bmap.',
  );
}
