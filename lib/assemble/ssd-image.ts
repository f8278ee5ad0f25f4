// The SSD OS image of one node: an MBR with the node's own disk signature, p1 `writable` at the base image's root
// offset, and, with a lock, p2 holding the node's bundle as a raw tar.
//
// How the root is copied:
// - Block by block from the base image's ext4: only the blocks its bitmaps mark used; the rest stays a hole.
//   The bitmaps are read as the copy reaches their groups, so the pass can follow a base image still being
//   decompressed.
// - From a complete base on Linux: those same blocks copied by the kernel (image/kernel-copy.ts, copy_file_range),
//   which shares them with the base where the file system has reflinks (XFS, btrfs) and copies them inside the
//   kernel elsewhere (ext4). Nothing outside them is copied, so nothing has to be punched out afterwards (a punch
//   on ext4 first writes the punched range's dirty pages to the disk and waits for them).
//
// Invariants:
// - Every node's SSD image is the same apart from its MBR: the root's range checksums are hashed by the first
//   image only, and several images follow a base still being decompressed in one pass.
// - The images are hashed while they are written, never read back.
// - The block-range checksums of the root are computed once per base image, each node's whole-file sha256 once
//   per disk signature; both are kept beside the base image (loadSsdChecksums/saveSsdChecksums), so a warm build
//   hashes only the MBR blocks. They are a function of the base root, the signature and this file's layout,
//   whose version the saved file carries.
// - An image with a bundle is keyed by its signature and the bundle's key (the tar is a function of its plan:
//   BundlePlan.key), with its bundle's range checksums: a warm build with the same lock hashes nothing more
//   either, so the bundle costs its bytes written.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { startCopyInKernel } from '../image/kernel-copy.ts';
import { waitForSignal } from './signal.ts';
import { FileIO, type BlockIO } from '../image/io.ts';
import { writeMbr, partitionIO, partUuid, SECTOR, type MbrPartition } from '../image/mbr.ts';
import { Ext4Fs } from '../image/ext4/index.ts';
import { ImageDigester, type ImageDigest, type KnownRange } from '../image/digest.ts';
import { InputError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { bundleChunks, BUNDLE_PARTITION_TYPE, type BundlePlan } from '../lock/bundle.ts';

/** Partitions start at 1 MiB, like the Ubuntu images and every modern partitioner. */
export const FIRST_LBA = 2048;
const CHUNK = 1 << 20; // fits the CPU cache between the read and the writes and hashes

export interface SsdImageResult {
  path: string;
  size: number;
  diskSignature: number;
  rootPartUuid: string;
  /** Whole-file sha256 and bmap range checksums, computed while writing (or known: SsdChecksums). */
  digest: ImageDigest;
}

export interface SsdTarget {
  path: string;
  diskSignature: number;
  /** The node's bundle: written raw as p2 (type 0xda) 1 MiB after the root; first boot imports it, then frees it. */
  bundle?: BundlePlan;
}

/** What is known of the SSD images of one base image before they are written. */
export interface SsdChecksums {
  /** Checksums of the block ranges every image shares, by first block (the MBR's range is per image: not here). */
  ranges: Map<number, KnownRange>;
  /** sha256 of the whole image, by disk signature. */
  wholes: Map<number, string>;
  /** Images with a bundle, by `<signature>:<bundle key>`: the whole sha256 and the checksums of the bundle's ranges. */
  bundled?: Map<string, { sha256: string; ranges: [number, number, string][] }>;
  /** Whole-file sha256 of other sparse images made from this base (the SD images), by contentKey (image/digest.ts). */
  byContent?: Map<string, string>;
  /** sha256 of runs of this base's bytes that SD images copy unchanged, by `start+length` (CopiedRanges.known). */
  copied?: Map<string, string>;
}

/** Bundled images remembered per base image (the most recent; each lock change adds one per node). */
const MAX_BUNDLED = 64;
/** SD images remembered per base image (the most recent; each change of a node's seed adds one). */
const MAX_BY_CONTENT = 64;
/** Copied runs remembered per base image (a few per SD image; the most recent). */
const MAX_COPIED = 256;

/** Bump when the bytes writeSsdImages writes change for the same base and signature. */
const LAYOUT_VERSION = 4;

/** The saved checksums of the SSD images of a base image (see writeSsdImages), if there are any. */
export function loadSsdChecksums(file: string): SsdChecksums | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as {
      version: number;
      ranges: [number, number, string][];
      wholes: [number, string][];
      bundled?: [string, { sha256: string; ranges: [number, number, string][] }][];
      byContent?: [string, string][];
      copied?: [string, string][];
    };
    if (saved.version !== LAYOUT_VERSION || !Array.isArray(saved.ranges) || !Array.isArray(saved.wholes)) return undefined;
    return {
      ranges: new Map(saved.ranges.map(([first, last, checksum]) => [first, { last, checksum }])),
      wholes: new Map(saved.wholes),
      bundled: new Map(Array.isArray(saved.bundled) ? saved.bundled : []),
      byContent: new Map(Array.isArray(saved.byContent) ? saved.byContent : []),
      copied: new Map(Array.isArray(saved.copied) ? saved.copied : []),
    };
  } catch {
    return undefined; // unreadable: made again by the next build and overwritten
  }
}

/** Keep them beside the base image (temporary name, then renamed). */
export function saveSsdChecksums(file: string, c: SsdChecksums): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const ranges = [...c.ranges].filter(([first]) => first > 0).map(([first, r]) => [first, r.last, r.checksum]);
  const bundled = [...(c.bundled ?? [])].slice(-MAX_BUNDLED);
  const byContent = [...(c.byContent ?? [])].slice(-MAX_BY_CONTENT);
  const copied = [...(c.copied ?? [])].slice(-MAX_COPIED);
  writeFileSync(tmp, JSON.stringify({ version: LAYOUT_VERSION, ranges, wholes: [...c.wholes], bundled, byContent, copied }));
  renameSync(tmp, file);
}

/**
 * Have the kernel copy the root's used blocks of a complete base image (at their offsets there) into every path
 * of `groups` (made empty here), one helper process per group, side by side, without blocking this thread: what
 * writeSsdImages({ precopied }) then builds on. Resolves to whether all did; `stop` kills them (a build that fails
 * meanwhile). One group per lane: on ext4 the copy is the kernel's CPU work (page-cache pages filled and, here,
 * faulted in from the host), and two helpers on two cores took 5.9-7.2 s for four images where one took 9.4-16.4 s
 * and four cp in a row 8.6-10.5 s (5 alternating rounds, by hand).
 */
export function startRootCopy(basePath: string, rootPart: MbrPartition, groups: string[][]): { done: Promise<boolean>; stop: () => void } {
  const base = FileIO.open(basePath);
  let ranges: { start: number; length: number }[];
  try {
    ranges = Ext4Fs.open(partitionIO(base, rootPart)).usedRanges().map((r) => ({ start: rootPart.start + r.start, length: r.length }));
  } finally {
    base.close();
  }
  for (const p of groups.flat()) writeFileSync(p, '');
  const copies = groups.filter((g) => g.length > 0).map((g) => startCopyInKernel(basePath, g, ranges));
  return {
    done: Promise.all(copies.map((c) => c.done)).then((oks) => oks.every(Boolean)),
    stop: () => copies.forEach((c) => c.stop()),
  };
}

/**
 * Write several SSD images in one pass over the base root: each chunk is read once and written to every image.
 * p1 (type 0x83) starts where the base image's root partition starts (so an image can share the base's blocks)
 * and is just large enough for the base root ext4 (whole MiB): the image stays small — checksums
 * and flashing cost what the data costs — and the node grows p1 and its filesystem to the profile's root size on
 * first boot. The first image hashes the shared block ranges (unless `known` has them) and the others take its
 * checksums. `known` is filled with what was learnt. With `precopied`, the kernel has copied the blocks instead
 * (cloned them where the file system has reflinks): the same bytes, none through here.
 */
export function writeSsdImages(opts: {
  targets: SsdTarget[];
  base: BlockIO;
  /** The base image as a complete file (omit while it is still written): then each image is copied in a pass of its own. */
  basePath?: string;
  rootPart: MbrPartition;
  /** Checksums known from an earlier build of the same base image; filled with what this pass learns. */
  checksums?: SsdChecksums;
  /** fsync the images once written. */
  fsync?: boolean;
  /**
   * Settled when the build's main thread has had the kernel copy the root's used blocks into every target
   * (startRootCopy; true) or could not (false: the targets are then written here).
   */
  precopied?: SharedArrayBuffer;
  onProgress?: OnProgress;
  detail?: string;
}): SsdImageResult[] {
  const src = partitionIO(opts.base, opts.rootPart);
  const fs = Ext4Fs.open(src);
  const fsBytes = fs.info.blocksCount * fs.info.blockSize;
  if (fsBytes > opts.rootPart.size) {
    throw new InputError(`${opts.base.name}: the root ext4 (${fsBytes} bytes) is larger than its partition ${opts.rootPart.index}`);
  }
  const p1Lba = opts.rootPart.startLba;
  const p1Start = p1Lba * SECTOR;
  const rootSectors = Math.ceil(fsBytes / SECTOR / 2048) * 2048;
  const rootEnd = p1Start + rootSectors * SECTOR;
  // A bundle sits 1 MiB after the root (whole MiB), so the image stays as small as its data; the gap keeps its
  // blocks out of the root's last bmap range, whose checksum every image shares.
  const bundleStart = rootEnd + 2048 * SECTOR;
  const bundleSectors = (t: SsdTarget) => (t.bundle ? Math.ceil(t.bundle.size / SECTOR / 2048) * 2048 : 0);
  const sizeOf = (t: SsdTarget) => (t.bundle ? bundleStart + bundleSectors(t) * SECTOR : rootEnd);
  const size = rootEnd;
  const checksums = opts.checksums ?? { ranges: new Map<number, KnownRange>(), wholes: new Map<number, string>() };
  const known = checksums.ranges;
  const bundled = (checksums.bundled ??= new Map());
  const bundledKey = (t: SsdTarget) => `${t.diskSignature}:${t.bundle!.key}`;
  /** What an earlier build learnt of this very image (same signature, same bundle), if anything. */
  const knownBundled = (t: SsdTarget) => (t.bundle ? bundled.get(bundledKey(t)) : undefined);
  const total = fs.info.blocksCount * fs.info.blockSize;
  const mbrOf = (t: SsdTarget) => {
    const partitions = [{ type: 0x83, bootable: false, startLba: p1Lba, sectors: rootSectors }];
    if (t.bundle) partitions.push({ type: BUNDLE_PARTITION_TYPE, bootable: false, startLba: bundleStart / SECTOR, sectors: bundleSectors(t) });
    return { diskSignature: t.diskSignature, partitions };
  };
  const outs: FileIO[] = [];
  try {
    // From a complete base: the root's used blocks copied by the kernel (shared where the file system has
    // reflinks), started by the build's main thread (`precopied`, startRootCopy) and waited for here.
    const inKernel = opts.precopied !== undefined && waitForSignal(opts.precopied);
    // Otherwise (or where that failed) each target is created empty and written here: it grows as it is written
    // (see FileIO.create).
    for (const t of opts.targets) outs.push(inKernel ? FileIO.resume(t.path, sizeOf(t)) : FileIO.create(t.path, sizeOf(t)));
    // The MBR after the kernel's copy: btrfs would keep a first block written into an empty file inline.
    for (const [i, t] of opts.targets.entries()) writeMbr(outs[i], mbrOf(t));
    const mbr = Buffer.alloc(SECTOR);
    // The block range holding the MBR (block 0) differs per image; the rest is hashed by the first image only.
    // Bundle blocks are each image's own: hashed here unless this image (signature and bundle) was built before,
    // never kept in the shared `known` (each bundled image has its own map: the shared ranges plus its bundle's).
    const bundleBlock = Math.floor(bundleStart / BLOCK);
    const knownOf = opts.targets.map((t) => (t.bundle ? new BundleRanges(known, bundleBlock, knownBundled(t)?.ranges ?? []) : known));
    const digest = (feed: boolean) => {
      const digesters = opts.targets.map(
        (t, i) =>
          new ImageDigester(sizeOf(t), {
            known: knownOf[i],
            learn: i === 0,
            hashRange: (first) => first === 0 || (first >= bundleBlock ? !knownOf[i]!.has(first) : i === 0 && !known.has(first)),
            whole: t.bundle ? !knownBundled(t) : !checksums.wholes.has(t.diskSignature),
          }),
      );
      for (const [i, out] of outs.entries()) {
        out.readInto(mbr, 0);
        digesters[i].update(0, mbr);
      }
      const buf = Buffer.allocUnsafe(CHUNK);
      let lastReport = 0;
      // Copying from a complete base, one image after the other, as cp would: the base is read again from the page
      // cache, and each image's writes stay sequential (several files grown in step cost the kernel more). From a
      // base still being decompressed, every image in the one pass that follows it.
      const passes = !inKernel && feed && opts.basePath !== undefined ? outs.map((_, i) => [i]) : [outs.map((_, i) => i)];
      for (const [k, pass] of passes.entries()) {
        for (const r of fs.usedRangesLazily()) {
          if (!feed) {
            // Clones with every checksum known: nothing to read, only the map to note.
            for (const d of digesters) d.touch(p1Start + r.start, r.length);
            continue;
          }
          for (let off = r.start; off < r.start + r.length; ) {
            const n = Math.min(CHUNK, r.start + r.length - off);
            const view = buf.subarray(0, n);
            src.readInto(view, off);
            for (const i of pass) {
              if (!inKernel) outs[i].write(p1Start + off, view);
              digesters[i].update(p1Start + off, view);
            }
            off += n;
            const done = k * total + off;
            if (opts.onProgress && done - lastReport >= 64 << 20) {
              lastReport = done;
              opts.onProgress({ phase: inKernel ? 'checksum root' : 'copy root', done, total: total * passes.length, unit: 'bytes', detail: opts.detail });
            }
          }
        }
      }
      for (const [i, t] of opts.targets.entries()) {
        if (!t.bundle) continue;
        let off = bundleStart;
        for (const chunk of bundleChunks(t.bundle)) {
          outs[i].write(off, chunk);
          digesters[i].update(off, chunk);
          off += chunk.length;
          if (opts.onProgress && off - lastReport >= 64 << 20) {
            lastReport = off;
            opts.onProgress({ phase: 'copy bundle', done: off - bundleStart, total: t.bundle.size, unit: 'bytes', detail: opts.detail });
          }
        }
      }
      return digesters.map((d) => d.finish());
    };
    const allKnown = inKernel && known.size > 0 && opts.targets.every((t) => (t.bundle ? knownBundled(t) : checksums.wholes.has(t.diskSignature)));
    let digests: ImageDigest[];
    try {
      digests = digest(!allKnown);
    } catch (err) {
      if (!allKnown) throw err;
      digests = digest(true); // a saved checksum is missing after all: hash the data
    }
    for (const first of [...known.keys()]) if (first >= bundleBlock) known.delete(first);
    if (opts.fsync) for (const out of outs) out.sync();
    return opts.targets.map((t, i) => {
      const d = digests[i];
      const rootPartUuid = partUuid(t.diskSignature, 1);
      if (t.bundle) {
        const k = knownBundled(t);
        if (k) d.sha256 = k.sha256;
        // Remembered as the most recent (a Map keeps insertion order; saveSsdChecksums keeps the last ones).
        bundled.delete(bundledKey(t));
        bundled.set(bundledKey(t), { sha256: d.sha256, ranges: d.ranges.filter((r) => r.first >= bundleBlock).map((r) => [r.first, r.last, r.checksum]) });
        return { path: t.path, size: sizeOf(t), diskSignature: t.diskSignature, rootPartUuid, digest: d };
      }
      if (checksums.wholes.has(t.diskSignature)) d.sha256 = checksums.wholes.get(t.diskSignature)!;
      else checksums.wholes.set(t.diskSignature, d.sha256);
      return { path: t.path, size, diskSignature: t.diskSignature, rootPartUuid, digest: d };
    });
  } finally {
    for (const out of outs) out.close();
  }
}

const BLOCK = 4096;

/**
 * The range checksums a bundled image sees: its own bundle's (from blocks `from` on, kept here) over the shared
 * ones, which stay in and go to `shared` (what the first image learns there, the other images read as they go).
 */
class BundleRanges extends Map<number, KnownRange> {
  constructor(
    private readonly shared: Map<number, KnownRange>,
    private readonly from: number,
    own: [number, number, string][],
  ) {
    super();
    for (const [first, last, checksum] of own) super.set(first, { last, checksum });
  }
  override get(first: number): KnownRange | undefined {
    return first >= this.from ? super.get(first) : this.shared.get(first);
  }
  override has(first: number): boolean {
    return first >= this.from ? super.has(first) : this.shared.has(first);
  }
  override set(first: number, r: KnownRange): this {
    if (first >= this.from) super.set(first, r);
    else this.shared.set(first, r);
    return this;
  }
}
