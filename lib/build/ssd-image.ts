// The SSD OS image of one node: an MBR with the node's own disk signature and one partition, `writable`, whose
// ext4 is copied from the base image block by block — only the blocks its bitmaps mark used; the rest stays a hole.
// The image is hashed while it is written (never read back). Every node's SSD image is the same apart from its MBR,
// so the block-range checksums of the root are computed once per base image (`ssdRangeChecksums`, cached beside
// the base image) and each node hashes only its whole file and its MBR block.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { FileIO, type BlockIO } from '../image/io.ts';
import { writeMbr, partitionIO, partUuid, type MbrPartition } from '../image/mbr.ts';
import { copyRanges, type ByteRange } from '../image/sparse.ts';
import { Ext4Fs } from '../image/ext4/index.ts';
import { ImageDigester, type ImageDigest } from '../image/digest.ts';
import { InputError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';

export const SECTOR = 512;
/** Partitions start at 1 MiB, like the Ubuntu images and every modern partitioner. */
export const FIRST_LBA = 2048;
const P1_START = FIRST_LBA * SECTOR;

export interface SsdImageResult {
  path: string;
  size: number;
  diskSignature: number;
  rootPartUuid: string;
  /** Byte ranges of the image that hold data (for the bmap and the checksums). */
  mapped: { start: number; length: number }[];
  /** Whole-file sha256 and bmap range checksums, computed while writing. */
  digest: ImageDigest;
}

/** Where the base root goes in an SSD image: p1 size, the used ranges (fs-relative) and the image's mapped ranges. */
interface SsdLayout {
  rootSectors: number;
  size: number;
  used: ByteRange[];
  mapped: ByteRange[];
}

/**
 * p1 (type 0x83) is just large enough for the base root ext4 (rounded up to whole MiB): the image stays small —
 * checksums and flashing cost what the data costs — and the node grows p1 and its filesystem to the profile's root
 * size on first boot, before it makes the brick partition behind it.
 */
function ssdLayout(base: BlockIO, rootPart: MbrPartition): SsdLayout {
  const fs = Ext4Fs.open(partitionIO(base, rootPart));
  const fsBytes = fs.info.blocksCount * fs.info.blockSize;
  if (fsBytes > rootPart.size) {
    throw new InputError(`${base.name}: the root ext4 (${fsBytes} bytes) is larger than its partition ${rootPart.index}`);
  }
  const rootSectors = Math.ceil(fsBytes / SECTOR / 2048) * 2048;
  const used = fs.usedRanges();
  const mapped = [{ start: 0, length: SECTOR }, ...used.map((r) => ({ start: r.start + P1_START, length: r.length }))];
  return { rootSectors, size: (FIRST_LBA + rootSectors) * SECTOR, used, mapped };
}

function p1(rootSectors: number): MbrPartition {
  return { index: 1, type: 0x83, bootable: false, startLba: FIRST_LBA, sectors: rootSectors, start: P1_START, size: rootSectors * SECTOR };
}

/**
 * Checksums of the SSD image's block ranges that do not hold the MBR — the same for every node built from this base
 * image — keyed "first-last". Computed by streaming the base root through a digester (no whole-file hash) and kept
 * in `cacheFile` when given, so later builds and the other nodes of this build skip that pass.
 */
export function ssdRangeChecksums(base: BlockIO, rootPart: MbrPartition, opts: { cacheFile?: string; onProgress?: OnProgress } = {}): Map<string, string> {
  if (opts.cacheFile && existsSync(opts.cacheFile)) {
    try {
      const saved = JSON.parse(readFileSync(opts.cacheFile, 'utf8')) as { version: number; ranges: [string, string][] };
      if (saved.version === 1) return new Map(saved.ranges);
    } catch {
      // unreadable: compute it again and overwrite
    }
  }
  const layout = ssdLayout(base, rootPart);
  const digester = new ImageDigester(layout.size, layout.mapped, { whole: false });
  copyRanges(partitionIO(base, rootPart), nullIO(layout.size - P1_START), layout.used, {
    onWrite: (off, data) => digester.update(off + P1_START, data),
    onProgress: opts.onProgress,
    phase: 'checksum root',
  });
  const d = digester.finish();
  const mbrBlocks = Math.ceil(SECTOR / d.blockSize);
  const known = new Map(d.ranges.filter((r) => r.first >= mbrBlocks).map((r) => [`${r.first}-${r.last}`, r.checksum] as [string, string]));
  if (opts.cacheFile) {
    const tmp = `${opts.cacheFile}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ version: 1, ranges: [...known] }));
    renameSync(tmp, opts.cacheFile);
  }
  return known;
}

/** A write-only BlockIO that drops what it is given (the checksum pass needs the copy loop, not the copy). */
function nullIO(size: number): BlockIO {
  const writeOnly = (): never => {
    throw new Error('nullIO is write-only');
  };
  return { name: '(checksum only)', size, readOnly: false, read: writeOnly, readInto: writeOnly, write() {}, sync() {} };
}

/** Write `path`: MBR + p1 holding a sparse copy of the base root, hashed on the way. */
export function writeSsdImage(opts: {
  path: string;
  base: BlockIO;
  rootPart: MbrPartition;
  diskSignature: number;
  /** Range checksums from ssdRangeChecksums (optional: without them every range is hashed here). */
  known?: ReadonlyMap<string, string>;
  onProgress?: OnProgress;
  detail?: string;
}): SsdImageResult {
  const layout = ssdLayout(opts.base, opts.rootPart);
  const digester = new ImageDigester(layout.size, layout.mapped, { known: opts.known });
  const out = FileIO.create(opts.path, layout.size);
  try {
    writeMbr(out, {
      diskSignature: opts.diskSignature,
      partitions: [{ type: 0x83, bootable: false, startLba: FIRST_LBA, sectors: layout.rootSectors }],
    });
    const mbr = Buffer.alloc(SECTOR);
    out.readInto(mbr, 0);
    digester.update(0, mbr);
    copyRanges(partitionIO(opts.base, opts.rootPart), partitionIO(out, p1(layout.rootSectors)), layout.used, {
      onProgress: opts.onProgress,
      phase: 'copy root',
      detail: opts.detail,
      onWrite: (off, data) => digester.update(off + P1_START, data),
    });
    out.sync();
  } finally {
    out.close();
  }
  return {
    path: opts.path,
    size: layout.size,
    diskSignature: opts.diskSignature,
    rootPartUuid: partUuid(opts.diskSignature, 1),
    mapped: layout.mapped,
    digest: digester.finish(),
  };
}
