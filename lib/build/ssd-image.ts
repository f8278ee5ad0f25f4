// The SSD OS image of one node: an MBR with the node's own disk signature and one partition, `writable`, whose
// ext4 is copied from the base image block by block — only the blocks its bitmaps mark used; the rest stays a hole.
// The images are hashed while they are written (never read back). Every node's SSD image is the same apart from its
// MBR, so several are written in one pass, the block-range checksums of the root are computed once per base image
// and each node's whole-file sha256 once per disk signature (both kept beside the base image: loadSsdChecksums/
// saveSsdChecksums; the bytes are a function of the base root, the signature and this file's layout, whose
// version the saved file carries), so a warm build hashes only the MBR blocks.
// The bitmaps are read as the copy reaches their groups, so the pass can follow a base image still being written.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { FileIO, type BlockIO } from '../image/io.ts';
import { writeMbr, partitionIO, partUuid, type MbrPartition } from '../image/mbr.ts';
import { Ext4Fs } from '../image/ext4/index.ts';
import { ImageDigester, type ImageDigest, type KnownRange } from '../image/digest.ts';
import { InputError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { bundleChunks, BUNDLE_PARTITION_TYPE, type BundlePlan } from '../lock/bundle.ts';

export const SECTOR = 512;
/** Partitions start at 1 MiB, like the Ubuntu images and every modern partitioner. */
export const FIRST_LBA = 2048;
const P1_START = FIRST_LBA * SECTOR;
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
  /** The node's bundle: written raw as p2 (type 0xda) right after the root; first boot imports it, then frees it. */
  bundle?: BundlePlan;
}

/** What is known of the SSD images of one base image before they are written. */
export interface SsdChecksums {
  /** Checksums of the block ranges every image shares, by first block (the MBR's range is per image: not here). */
  ranges: Map<number, KnownRange>;
  /** sha256 of the whole image, by disk signature. */
  wholes: Map<number, string>;
}

/** Bump when the bytes writeSsdImages writes change for the same base and signature. */
const LAYOUT_VERSION = 3;

/** The saved checksums of the SSD images of a base image (see writeSsdImages), if there are any. */
export function loadSsdChecksums(file: string): SsdChecksums | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { version: number; ranges: [number, number, string][]; wholes: [number, string][] };
    if (saved.version !== LAYOUT_VERSION || !Array.isArray(saved.ranges) || !Array.isArray(saved.wholes)) return undefined;
    return { ranges: new Map(saved.ranges.map(([first, last, checksum]) => [first, { last, checksum }])), wholes: new Map(saved.wholes) };
  } catch {
    return undefined; // unreadable: made again by the next build and overwritten
  }
}

/** Keep them beside the base image (temporary name, then renamed). */
export function saveSsdChecksums(file: string, c: SsdChecksums): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const ranges = [...c.ranges].filter(([first]) => first > 0).map(([first, r]) => [first, r.last, r.checksum]);
  writeFileSync(tmp, JSON.stringify({ version: LAYOUT_VERSION, ranges, wholes: [...c.wholes] }));
  renameSync(tmp, file);
}

/**
 * Write several SSD images in one pass over the base root: each chunk is read once and written to every image.
 * p1 (type 0x83) is just large enough for the base root ext4 (whole MiB): the image stays small — checksums and
 * flashing cost what the data costs — and the node grows p1 and its filesystem to the profile's root size on first
 * boot. The first image hashes the shared block ranges (unless `known` has them) and the others take its
 * checksums. `known` is filled with what was learnt.
 */
export function writeSsdImages(opts: {
  targets: SsdTarget[];
  base: BlockIO;
  rootPart: MbrPartition;
  /** Checksums known from an earlier build of the same base image; filled with what this pass learns. */
  checksums?: SsdChecksums;
  /** fsync the images once written. */
  fsync?: boolean;
  onProgress?: OnProgress;
  detail?: string;
}): SsdImageResult[] {
  const src = partitionIO(opts.base, opts.rootPart);
  const fs = Ext4Fs.open(src);
  const fsBytes = fs.info.blocksCount * fs.info.blockSize;
  if (fsBytes > opts.rootPart.size) {
    throw new InputError(`${opts.base.name}: the root ext4 (${fsBytes} bytes) is larger than its partition ${opts.rootPart.index}`);
  }
  const rootSectors = Math.ceil(fsBytes / SECTOR / 2048) * 2048;
  const rootEnd = (FIRST_LBA + rootSectors) * SECTOR;
  // A bundle sits 1 MiB after the root (whole MiB), so the image stays as small as its data; the gap keeps its
  // blocks out of the root's last bmap range, whose checksum every image shares.
  const bundleStart = rootEnd + 2048 * SECTOR;
  const bundleSectors = (t: SsdTarget) => (t.bundle ? Math.ceil(t.bundle.size / SECTOR / 2048) * 2048 : 0);
  const sizeOf = (t: SsdTarget) => (t.bundle ? bundleStart + bundleSectors(t) * SECTOR : rootEnd);
  const size = rootEnd;
  const checksums = opts.checksums ?? { ranges: new Map<number, KnownRange>(), wholes: new Map<number, string>() };
  const known = checksums.ranges;
  const total = fs.info.blocksCount * fs.info.blockSize;
  const outs: FileIO[] = [];
  try {
    // The block range holding the MBR (block 0) differs per image; the rest is hashed by the first image only.
    // Bundle blocks are each image's own: always hashed here, never taken from or kept in `known` (removed below).
    const bundleBlock = Math.floor(bundleStart / 4096);
    const digesters = opts.targets.map(
      (t, i) =>
        new ImageDigester(sizeOf(t), {
          known,
          learn: i === 0,
          hashRange: (first) => first === 0 || first >= bundleBlock || (i === 0 && !known.has(first)),
          whole: t.bundle !== undefined || !checksums.wholes.has(t.diskSignature),
        }),
    );
    const mbr = Buffer.alloc(SECTOR);
    for (const [i, t] of opts.targets.entries()) {
      const out = FileIO.create(t.path, sizeOf(t));
      outs.push(out);
      const parts = [{ type: 0x83, bootable: false, startLba: FIRST_LBA, sectors: rootSectors }];
      if (t.bundle) parts.push({ type: BUNDLE_PARTITION_TYPE, bootable: false, startLba: bundleStart / SECTOR, sectors: bundleSectors(t) });
      writeMbr(out, { diskSignature: t.diskSignature, partitions: parts });
      out.readInto(mbr, 0);
      digesters[i].update(0, mbr);
    }
    const buf = Buffer.allocUnsafe(CHUNK);
    let lastReport = 0;
    for (const r of fs.usedRangesLazily()) {
      for (let off = r.start; off < r.start + r.length; ) {
        const n = Math.min(CHUNK, r.start + r.length - off);
        const view = buf.subarray(0, n);
        src.readInto(view, off);
        for (const [i, out] of outs.entries()) {
          out.write(P1_START + off, view);
          digesters[i].update(P1_START + off, view);
        }
        off += n;
        if (opts.onProgress && off - lastReport >= 64 << 20) {
          lastReport = off;
          opts.onProgress({ phase: 'copy root', done: off, total, unit: 'bytes', detail: opts.detail });
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
    for (const first of [...known.keys()]) if (first >= bundleBlock) known.delete(first);
    if (opts.fsync) for (const out of outs) out.sync();
    return opts.targets.map((t, i) => {
      const digest = digesters[i].finish();
      if (t.bundle) return { path: t.path, size: sizeOf(t), diskSignature: t.diskSignature, rootPartUuid: partUuid(t.diskSignature, 1), digest };
      if (checksums.wholes.has(t.diskSignature)) digest.sha256 = checksums.wholes.get(t.diskSignature)!;
      else checksums.wholes.set(t.diskSignature, digest.sha256);
      return { path: t.path, size, diskSignature: t.diskSignature, rootPartUuid: partUuid(t.diskSignature, 1), digest };
    });
  } finally {
    for (const out of outs) out.close();
  }
}
