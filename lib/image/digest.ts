// The checksums of a sparse image that we wrote ourselves: the sha256 of the whole file and the per-range sha256
// of its mapped blocks (for a bmap), reading only the mapped ranges and feeding zeros for the holes in between.
// Such an image is its mapped ranges' bytes with zeros elsewhere, so its size and range checksums determine every
// byte (contentKey): digestImage takes a whole-file sha256 remembered by that key instead of hashing the image a
// second time (its data and an SD image's free FAT space, ~200 MiB of zeros each).
// An image partly copied from a base (CopiedRanges) has its mapped ranges split where the unchanged copy starts
// and ends: those runs' checksums are the base's bytes' and are remembered by where they are in the base, so a
// rebuild hashes only what it wrote. The split depends on what was written, never on what was remembered: the
// same build gives the same ranges (and bmap) with or without them.
import { createHash, type Hash } from 'node:crypto';
import type { OnProgress } from '../progress.ts';
import { toBlockRanges, type BmapRange } from './bmap.ts';
import type { ByteRange } from './sparse.ts';
import { FileIO, type BlockIO } from './io.ts';

/** A mapped block range with its sha256 (bmaptool's convention: first and last block, inclusive). */
export type BlockRange = Required<BmapRange>;

export interface ImageDigest {
  size: number;
  blockSize: number;
  sha256: string;
  ranges: BlockRange[];
  mappedBlocks: number;
}

const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);

function feedZeros(hash: Hash, length: number): void {
  while (length > 0) {
    const n = Math.min(length, CHUNK);
    hash.update(n === CHUNK ? ZEROS : ZEROS.subarray(0, n));
    length -= n;
  }
}

/** Ranges of an image that hold an unchanged copy of a base's bytes, and checksums remembered for such runs. */
export interface CopiedRanges {
  /** Byte ranges of the image (sorted, disjoint) holding the base's bytes at offset + `shift`. */
  clean: readonly ByteRange[];
  shift: number;
  /** sha256 of base byte runs, by `start+length` in the base: taken when there, added when hashed here. */
  known: Map<string, string>;
}

/**
 * Hash `image` (a path, or an open view such as image/copied-io.ts's, left open): the whole file (holes read as
 * zeros, without reading them) and each mapped range, by reading the mapped blocks. The caller guarantees that
 * everything outside `ranges` is zero (it wrote the image sparse). With `wholes`, the range checksums come first:
 * when their contentKey is known, its whole-file sha256 is taken and no byte is hashed twice; otherwise a second
 * pass over the same blocks makes it (and adds it). Without, one pass makes both. With `copied`, the ranges are
 * split at the unchanged copy's edges and its runs' checksums are taken from (or added to) `copied.known`.
 */
export function digestImage(
  image: string | BlockIO,
  ranges: { start: number; length: number }[],
  opts: { blockSize?: number; onProgress?: OnProgress; detail?: string; wholes?: Map<string, string>; copied?: CopiedRanges } = {},
): ImageDigest {
  const blockSize = opts.blockSize ?? 4096;
  const io = typeof image === 'string' ? FileIO.open(image) : image;
  try {
    const size = io.size;
    const blocks = toBlockRanges(ranges, blockSize, size);
    // Each run with its bytes [start, end): the image's last block may be short.
    const runs = (opts.copied ? splitAtCopied(blocks, opts.copied.clean, blockSize) : blocks.map((b) => ({ ...b, copied: false }))).map((b) => ({
      ...b,
      start: b.first * blockSize,
      end: Math.min(size, (b.last + 1) * blockSize),
    }));
    const total = runs.reduce((s, b) => s + b.end - b.start, 0);
    const buf = Buffer.allocUnsafe(CHUNK);
    let done = 0;
    /** The bytes of one run, in order, to `take`. */
    const read = ({ start, end }: { start: number; end: number }, take: (offset: number, data: Buffer) => void, progress: boolean): void => {
      for (let off = start; off < end; ) {
        const view = buf.subarray(0, Math.min(CHUNK, end - off));
        io.readInto(view, off);
        take(off, view);
        off += view.length;
        done += view.length;
        if (progress) opts.onProgress?.({ phase: 'checksum', done, total, detail: opts.detail });
      }
    };
    if (!opts.wholes && !opts.copied) {
      const digester = new ImageDigester(size, { blockSize });
      for (const b of runs) read(b, (off, view) => digester.update(off, view), true);
      return digester.finish();
    }
    const out: BlockRange[] = [];
    for (const b of runs) {
      const { start, end } = b;
      const key = b.copied ? `${start + opts.copied!.shift}+${end - start}` : '';
      let checksum = b.copied ? opts.copied!.known.get(key) : undefined;
      if (checksum === undefined) {
        const h = createHash('sha256');
        read(b, (_, view) => h.update(view), true);
        checksum = h.digest('hex');
        if (b.copied) opts.copied!.known.set(key, checksum);
      } else {
        done += end - start;
        opts.onProgress?.({ phase: 'checksum', done, total, detail: opts.detail });
      }
      out.push({ first: b.first, last: b.last, checksum });
    }
    const mapped = out.reduce((s, b) => s + b.last - b.first + 1, 0);
    const key = contentKey(size, blockSize, out);
    let sha256 = opts.wholes?.get(key);
    if (sha256 === undefined) {
      const whole = createHash('sha256');
      let pos = 0;
      for (const b of runs) {
        read(b, (off, view) => {
          feedZeros(whole, off - pos);
          whole.update(view);
          pos = off + view.length;
        }, false);
      }
      feedZeros(whole, size - pos);
      sha256 = whole.digest('hex');
      opts.wholes?.set(key, sha256);
    }
    return { size, blockSize, sha256, ranges: out, mappedBlocks: mapped };
  } finally {
    if (typeof image === 'string') (io as FileIO).close();
  }
}

/**
 * Split block ranges where whole blocks inside `clean` begin and end: runs marked `copied` lie wholly in one clean
 * range, the others hold no block that does.
 */
export function splitAtCopied(blocks: readonly BmapRange[], clean: readonly ByteRange[], blockSize: number): { first: number; last: number; copied: boolean }[] {
  // Whole blocks of each clean range, as [first, last].
  const inside = clean
    .map((c) => ({ first: Math.ceil(c.start / blockSize), last: Math.floor((c.start + c.length) / blockSize) - 1 }))
    .filter((c) => c.first <= c.last);
  const out: { first: number; last: number; copied: boolean }[] = [];
  let j = 0;
  for (const b of blocks) {
    let p = b.first;
    while (p <= b.last) {
      while (j < inside.length && inside[j]!.last < p) j++;
      const c = inside[j];
      if (c && c.first <= p) {
        const last = Math.min(b.last, c.last);
        out.push({ first: p, last, copied: true });
        p = last + 1;
      } else {
        const last = c && c.first <= b.last ? c.first - 1 : b.last;
        out.push({ first: p, last, copied: false });
        p = last + 1;
      }
    }
  }
  return out;
}

/** What determines a sparse image's every byte: its size and its mapped ranges with their checksums. */
export function contentKey(size: number, blockSize: number, ranges: BlockRange[]): string {
  const h = createHash('sha256').update(`sparse image v1 ${size} ${blockSize}\n`);
  for (const r of ranges) h.update(`${r.first} ${r.last} ${r.checksum}\n`);
  return h.digest('hex');
}

/** A block range's checksum known before it is hashed, keyed by its first block. */
export interface KnownRange {
  last: number;
  checksum: string;
}

/**
 * The same digest computed while an image is being written, so it is never read back and the ranges need not be
 * known in advance: give it every written chunk in ascending offset order (`update`; everything not written is
 * zero), then `finish`. The mapped block ranges are the maximal runs of blocks that writes touched — what
 * toBlockRanges makes of the written byte ranges. Range checksums in `known` (keyed by first block) are taken
 * instead of hashed where `hashRange` says so (default: when known); with `learn`, those hashed here are added, so
 * a digester fed after this one with the same data can take them. `whole: false` skips the whole-file hash.
 */
export class ImageDigester {
  readonly blockSize: number;
  private readonly whole?: Hash;
  private pos = 0;
  private cur?: { first: number; last: number; hash?: Hash };
  private readonly out: BlockRange[] = [];

  constructor(
    readonly size: number,
    private readonly opts: {
      blockSize?: number;
      known?: Map<number, KnownRange>;
      learn?: boolean;
      hashRange?: (first: number) => boolean;
      whole?: boolean;
    } = {},
  ) {
    this.blockSize = opts.blockSize ?? 4096;
    if (opts.whole !== false) this.whole = createHash('sha256');
  }

  /** Bytes written at `offset` (ascending; everything between writes is zero). */
  update(offset: number, data: Uint8Array): void {
    this.advance(offset, data.length, data);
  }

  /**
   * `length` bytes at `offset` hold data that nothing here needs to hash: the whole-file hash is off and the
   * range's checksum is known. Marks them mapped without reading them; throws when a hash would need them.
   */
  touch(offset: number, length: number): void {
    this.advance(offset, length);
  }

  private advance(offset: number, length: number, data?: Uint8Array): void {
    if (length === 0) return;
    if (offset < this.pos) throw new Error(`ImageDigester: write at ${offset} after ${this.pos} (writes must ascend)`);
    if (offset + length > this.size) throw new Error(`ImageDigester: write at ${offset}+${length} beyond the image size ${this.size}`);
    const bs = this.blockSize;
    const first = Math.floor(offset / bs);
    if (this.cur && first <= this.cur.last + 1) {
      this.zeros(offset, true); // the gap lies inside the range: its blocks touch
    } else {
      this.close();
      this.zeros(first * bs, false);
      const own = this.opts.hashRange ? this.opts.hashRange(first) : !this.opts.known?.has(first);
      this.cur = { first, last: first, hash: own ? createHash('sha256') : undefined };
      this.zeros(offset, true);
    }
    if (data) {
      this.whole?.update(data);
      this.cur!.hash?.update(data);
    } else if (this.whole || this.cur!.hash) throw new Error(`ImageDigester: bytes at ${offset} must be hashed, not skipped`);
    this.pos = offset + length;
    this.cur!.last = Math.max(this.cur!.last, Math.floor((this.pos - 1) / bs));
  }

  finish(): ImageDigest {
    this.close();
    const mapped = this.out.reduce((s, b) => s + b.last - b.first + 1, 0);
    this.zeros(this.size, false);
    const sha256 = this.whole?.digest('hex') ?? '';
    return { size: this.size, blockSize: this.blockSize, sha256, ranges: this.out, mappedBlocks: mapped };
  }

  /** Feed zeros up to `end` into the whole-file hash, and into the open range's hash when `inRange`. */
  private zeros(end: number, inRange: boolean): void {
    const n = end - this.pos;
    if (n <= 0) return;
    if (this.whole) feedZeros(this.whole, n);
    if (inRange && this.cur?.hash) feedZeros(this.cur.hash, n);
    this.pos = end;
  }

  /** End the open range at the end of its last block (or of the image). */
  private close(): void {
    const r = this.cur;
    if (!r) return;
    this.zeros(Math.min(this.size, (r.last + 1) * this.blockSize), true);
    let checksum: string;
    if (r.hash) {
      checksum = r.hash.digest('hex');
      if (this.opts.learn) this.opts.known?.set(r.first, { last: r.last, checksum });
    } else {
      const k = this.opts.known?.get(r.first);
      if (!k || k.last !== r.last) throw new Error(`ImageDigester: no checksum known for blocks ${r.first}-${r.last}`);
      checksum = k.checksum;
    }
    this.out.push({ first: r.first, last: r.last, checksum });
    this.cur = undefined;
  }
}

/** sha256 of a whole (small or dense) file, streaming. */
export function sha256File(path: string): string {
  const io = FileIO.open(path);
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let off = 0; off < io.size; ) {
      const view = buf.subarray(0, Math.min(CHUNK, io.size - off));
      io.readInto(view, off);
      h.update(view);
      off += view.length;
    }
    return h.digest('hex');
  } finally {
    io.close();
  }
}
