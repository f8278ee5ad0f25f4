// The bmap copy: write a disk image to a block device or a file, only the blocks that hold data.
//
// How it works (after bmaptool's BmapCopy):
//
// A disk image is mostly free space. A block map (bmap, lib/image/bmap.ts) lists the image's mapped blocks as
// ranges of whole blocks (first..last, inclusive), each with a checksum; blocks outside them are zeros that no
// filesystem on the image cares about, so they are neither read nor written. On a file target they stay holes (the
// file is made sparse at the image's size); on a device they keep whatever was there, as with bmaptool.
//
// Without a bmap the map is made on the fly: the image's data extents are asked of the file system (SEEK_DATA /
// SEEK_HOLE, lib/image/extents.ts; the whole image when it cannot say), read in order, and within each chunk only
// the runs of non-zero blocks are written (forEachDataRun). Those runs, merged where they touch, are the map this
// copy returns; they carry no checksums, so the verify pass compares them with the image instead.
//
// The copy goes through the ranges in ascending order, in chunks (8 MiB by default): read the chunk from the image,
// write it at the same offset of the target. Two things change that order:
// - The head goes last. The first MiB (partition table, the gap a boot loader may use) is kept in memory and written
//   after everything else. On a device it is zeroed and synced first: a flash that dies halfway leaves no partition
//   table pointing at half-written filesystems, so nothing bootable-looking.
// - Writeback starts early. Every 64 MiB written, an fsync is started off this thread if none is running, so the
//   disk writes while this thread reads, instead of all dirty pages waiting for the end.
//
// As it goes, the copy publishes how far it has got (a Watermark), so the verify of a file target can trail it on
// worker threads (verify.ts), and reports progress. Nothing here prints or checks the target's safety (target.ts).
import { fsync, fsyncSync } from 'node:fs';
import type { FileIO } from '../image/io.ts';
import { bmapByteRanges, type Bmap, type BmapRange } from '../image/bmap.ts';
import { forEachDataRun, rangesBytes } from '../image/sparse.ts';
import type { OnProgress } from '../progress.ts';
import type { Watermark } from './hash-workers.ts';
import { ticker } from './ticker.ts';

/** The first MiB (MBR, partition gap, boot loader area) is written last. */
export const HEAD_BYTES = 1 << 20;
/** Default I/O size. */
export const CHUNK = 8 << 20;
/** Start an fsync every this many bytes written (if none is running). */
const FLUSH_EVERY = 64 << 20;

export const fsyncAsync = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));

/** Start writeback early: every FLUSH_EVERY bytes written, an fsync (off this thread) if none is running. */
class Flusher {
  private since = 0;
  private running?: Promise<void>;
  private failed?: Error;
  constructor(private readonly fd: number) {}
  wrote(n: number): void {
    if (this.failed) throw this.failed;
    this.since += n;
    if (this.running || this.since < FLUSH_EVERY) return;
    this.since = 0;
    this.running = fsyncAsync(this.fd).then(
      () => (this.running = undefined),
      (err: Error) => {
        this.failed = err;
        this.running = undefined;
      },
    );
  }
  /** Wait for the fsync in flight; throws what it failed with. */
  async settle(): Promise<void> {
    await this.running;
    if (this.failed) throw this.failed;
  }
}

export interface CopyOptions {
  /** The map to copy; without one, `extents` are copied and mapped on the fly. */
  bmap?: Bmap;
  /** The image's data extents (mapping on the fly). */
  extents?: { start: number; length: number }[];
  blockSize: number;
  imageSize: number;
  chunk: number;
  /** The target is a device: zero its head and sync first, sync before the head and after it. */
  device: boolean;
  /** Told how far the copy has got, and when all is written (finish(1)). */
  mark?: Watermark;
  onProgress?: OnProgress;
  detail?: string;
}

/** Copy the image's mapped blocks to `dst` (see the file header); returns the map copied (or made). */
export async function copyImage(src: FileIO, dst: FileIO, o: CopyOptions): Promise<BmapRange[]> {
  const flusher = new Flusher(dst.fd);
  try {
    const head = Buffer.alloc(Math.min(HEAD_BYTES, o.imageSize));
    if (o.device) {
      dst.write(0, head);
      fsyncSync(dst.fd);
    }
    const headRuns: { start: number; end: number }[] = [];
    const put = (offset: number, data: Buffer) => {
      let d = data;
      let off = offset;
      if (off < head.length) {
        const n = Math.min(d.length, head.length - off);
        d.copy(head, off, 0, n);
        headRuns.push({ start: off, end: off + n });
        d = d.subarray(n);
        off += n;
      }
      if (d.length > 0) dst.write(off, d);
      flusher.wrote(d.length);
    };
    const buf = Buffer.allocUnsafe(Math.max(o.blockSize, Math.floor(o.chunk / o.blockSize) * o.blockSize));
    const ranges = o.bmap ? await copyMapped(src, o.bmap, buf, put, o) : await copyMappingOnTheFly(src, o.extents!, buf, put, o);
    await flusher.settle();
    if (o.device) fsyncSync(dst.fd);
    for (const r of headRuns) dst.write(r.start, head.subarray(r.start, r.end));
    o.mark?.finish(1);
    return ranges;
  } catch (err) {
    await flusher.settle().catch(() => undefined);
    throw err;
  }
}

type Put = (offset: number, data: Buffer) => void;

/** Every byte of the bmap's ranges, chunk by chunk. */
async function copyMapped(src: FileIO, bmap: Bmap, buf: Buffer, put: Put, o: CopyOptions): Promise<BmapRange[]> {
  const byteRanges = bmapByteRanges(bmap);
  const tick = ticker(o.onProgress, 'write', rangesBytes(byteRanges), o.detail);
  let done = 0;
  for (const r of byteRanges) {
    for (let off = r.start; off < r.start + r.length; ) {
      const view = buf.subarray(0, Math.min(buf.length, r.start + r.length - off));
      src.readInto(view, off);
      put(off, view);
      off += view.length;
      done += view.length;
      o.mark?.passed(off);
      await tick(done);
    }
  }
  await tick(done, true);
  return bmap.ranges;
}

/** The extents' non-zero blocks, noting the runs written as the map. Nothing is hashed: verify compares. */
async function copyMappingOnTheFly(src: FileIO, extents: { start: number; length: number }[], buf: Buffer, put: Put, o: CopyOptions): Promise<BmapRange[]> {
  const bs = o.blockSize;
  const ranges: BmapRange[] = [];
  const tick = ticker(o.onProgress, 'write', rangesBytes(extents), o.detail);
  let run: { start: number; end: number } | undefined;
  const close = () => {
    if (run) ranges.push({ first: run.start / bs, last: Math.ceil(run.end / bs) - 1 });
    run = undefined;
  };
  let done = 0;
  for (const x of extents) {
    for (let pos = x.start; pos < x.start + x.length; ) {
      const view = buf.subarray(0, Math.min(buf.length, x.start + x.length - pos));
      src.readInto(view, pos);
      forEachDataRun(view, bs, (s, e) => {
        if (run && run.end !== pos + s) close();
        if (!run) run = { start: pos + s, end: pos + s };
        run.end = pos + e;
        put(pos + s, view.subarray(s, e));
      });
      pos += view.length;
      done += view.length;
      o.mark?.passed(pos);
      await tick(done);
    }
  }
  close();
  await tick(done, true);
  return ranges;
}
