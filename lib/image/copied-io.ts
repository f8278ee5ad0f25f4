// A destination image that holds a copy of ranges of a source image, read from the source while those bytes are
// unchanged. A kernel copy or reflink (kernel-copy.ts) puts the source's blocks into a new file whose page cache is
// empty: reading them back (to edit the FAT, to hash the image) goes to the disk, ~0.5 s a lane of SD images on a
// reflinking file system, while the source's pages are usually cached and the bytes are the same.
// Invariants:
// - The caller guarantees that dst holds src's bytes in `ranges` (at dst offset = src offset - `shift`) when this is
//   made; each write here goes to dst and makes the bytes it covers dst's own, so every read returns dst's content.
// - Reads outside the clean ranges, and all writes, go to dst; src is only read.
import type { BlockIO } from './io.ts';
import type { ByteRange } from './sparse.ts';
import { mergeRanges } from './sparse.ts';

export class CopiedIO implements BlockIO {
  readonly base = 0;
  /** Sorted, disjoint [start, end) of dst still holding src's bytes. */
  private readonly clean: { start: number; end: number }[];

  /**
   * `ranges` (dst offsets) of `dst` hold `src`'s bytes at dst offset + `shift`.
   */
  constructor(
    private readonly dst: BlockIO,
    private readonly src: BlockIO,
    ranges: readonly ByteRange[],
    private readonly shift: number,
  ) {
    this.clean = mergeRanges(ranges).map((r) => ({ start: r.start, end: r.start + r.length }));
  }

  get size(): number {
    return this.dst.size;
  }
  get name(): string {
    return this.dst.name;
  }
  get readOnly(): boolean {
    return this.dst.readOnly;
  }

  read(offset: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    this.readInto(buf, offset);
    return buf;
  }

  readInto(buf: Buffer, offset: number): void {
    const end = offset + buf.length;
    if (offset < 0 || end > this.dst.size) return this.dst.readInto(buf, offset); // its bounds error
    let pos = offset;
    let i = this.firstEndingAfter(pos);
    while (pos < end) {
      const c = this.clean[i];
      if (c && c.start <= pos) {
        const stop = Math.min(end, c.end);
        this.src.readInto(buf.subarray(pos - offset, stop - offset), pos + this.shift);
        pos = stop;
        i++;
      } else {
        const stop = Math.min(end, c ? c.start : end);
        this.dst.readInto(buf.subarray(pos - offset, stop - offset), pos);
        pos = stop;
      }
    }
  }

  write(offset: number, data: Uint8Array): void {
    this.dst.write(offset, data);
    const end = offset + data.length;
    const i = this.firstEndingAfter(offset);
    let j = i;
    const kept: { start: number; end: number }[] = [];
    for (; j < this.clean.length && this.clean[j]!.start < end; j++) {
      const c = this.clean[j]!;
      if (c.start < offset) kept.push({ start: c.start, end: offset });
      if (c.end > end) kept.push({ start: end, end: c.end });
    }
    if (j > i) this.clean.splice(i, j - i, ...kept);
  }

  sync(): void {
    this.dst.sync();
  }

  /** The byte ranges of dst that still hold src's bytes (at offset + shift), for image/digest.ts CopiedRanges. */
  cleanRanges(): { clean: ByteRange[]; shift: number } {
    return { clean: this.clean.map((c) => ({ start: c.start, length: c.end - c.start })), shift: this.shift };
  }

  /** Index of the first clean range ending after `pos` (clean.length when none). */
  private firstEndingAfter(pos: number): number {
    let lo = 0;
    let hi = this.clean.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.clean[mid]!.end <= pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
