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

/**
 * The same digest computed while an image is being written, so it is never read back: give it the image size and
 * the byte ranges that will hold data, then every written chunk in ascending offset order (`update`), and `finish`.
 * Range checksums already known (`known`, keyed "first-last") are not recomputed; `whole: false` skips the
 * whole-file hash (for precomputing range checksums).
 */
export class ImageDigester {
  readonly blocks: BmapRange[];
  private readonly whole?: Hash;
  private part?: Hash;
  private pos = 0;
  private idx = 0;
  private readonly out: BlockRange[] = [];

  constructor(
    readonly size: number,
    ranges: { start: number; length: number }[],
    private readonly opts: { blockSize?: number; known?: ReadonlyMap<string, string>; whole?: boolean } = {},
  ) {
    this.blocks = toBlockRanges(ranges, this.blockSize, size);
    if (opts.whole !== false) this.whole = createHash('sha256');
  }

  get blockSize(): number {
    return this.opts.blockSize ?? 4096;
  }

  /** Bytes written at `offset` (ascending; everything between writes is zero). */
  update(offset: number, data: Buffer): void {
    if (offset < this.pos) throw new Error(`ImageDigester: write at ${offset} after ${this.pos} (writes must ascend)`);
    this.feed(offset);
    this.feed(offset + data.length, data);
  }

  finish(): ImageDigest {
    this.feed(this.size);
    const mapped = this.blocks.reduce((s, b) => s + b.last - b.first + 1, 0);
    return { size: this.size, blockSize: this.blockSize, sha256: this.whole?.digest('hex') ?? '', ranges: this.out, mappedBlocks: mapped };
  }

  /** Advance to `end`, hashing `data` (which starts at the current position) or zeros. */
  private feed(end: number, data?: Buffer): void {
    const bs = this.blockSize;
    const base = this.pos;
    while (this.pos < end) {
      const r = this.blocks[this.idx];
      const rs = r ? r.first * bs : Infinity;
      const re = r ? Math.min(this.size, (r.last + 1) * bs) : Infinity;
      const inRange = this.pos >= rs;
      const segEnd = Math.min(end, inRange ? re : rs);
      if (data && !inRange) throw new Error(`ImageDigester: data at ${this.pos} lies outside the mapped ranges`);
      if (inRange && this.pos === rs) {
        const key = `${r!.first}-${r!.last}`;
        this.part = this.opts.known?.has(key) ? undefined : createHash('sha256');
      }
      if (data) {
        const view = data.subarray(this.pos - base, segEnd - base);
        this.whole?.update(view);
        if (inRange) this.part?.update(view);
      } else {
        if (this.whole) feedZeros(this.whole, segEnd - this.pos);
        if (inRange && this.part) feedZeros(this.part, segEnd - this.pos);
      }
      this.pos = segEnd;
      if (inRange && this.pos === re) {
        const key = `${r!.first}-${r!.last}`;
        this.out.push({ first: r!.first, last: r!.last, checksum: this.part ? this.part.digest('hex') : this.opts.known!.get(key)! });
        this.part = undefined;
        this.idx++;
      }
    }
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
