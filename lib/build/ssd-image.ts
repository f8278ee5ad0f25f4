// The SSD OS image of one node: an MBR with the node's own disk signature and one partition, `writable`, whose
// ext4 is copied from the base image block by block — only the blocks its bitmaps mark used; the rest stays a hole.
import { FileIO, type BlockIO } from '../image/io.ts';
import { writeMbr, partitionIO, partUuid, type MbrPartition } from '../image/mbr.ts';
import { copyRanges } from '../image/sparse.ts';
import { Ext4Fs } from '../image/ext4/index.ts';
import { InputError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';

export const SECTOR = 512;
/** Partitions start at 1 MiB, like the Ubuntu images and every modern partitioner. */
export const FIRST_LBA = 2048;

export interface SsdImageResult {
  path: string;
  size: number;
  diskSignature: number;
  rootPartUuid: string;
  /** Byte ranges of the image that hold data (for the bmap and the checksums). */
  mapped: { start: number; length: number }[];
}

/**
 * Write `path`: MBR + p1 (type 0x83) just large enough for the base root ext4 (rounded up to whole MiB), holding a
 * sparse copy of it. The image stays small — checksums and flashing cost what the data costs — and the node grows
 * p1 and its filesystem to the profile's root size on first boot, before it makes the brick partition behind it.
 */
export function writeSsdImage(opts: {
  path: string;
  base: BlockIO;
  rootPart: MbrPartition;
  diskSignature: number;
  onProgress?: OnProgress;
  detail?: string;
}): SsdImageResult {
  const src = partitionIO(opts.base, opts.rootPart);
  const fs = Ext4Fs.open(src);
  const fsBytes = fs.info.blocksCount * fs.info.blockSize;
  if (fsBytes > opts.rootPart.size) {
    throw new InputError(`${opts.base.name}: the root ext4 (${fsBytes} bytes) is larger than its partition ${opts.rootPart.index}`);
  }
  const rootSectors = Math.ceil(fsBytes / SECTOR / 2048) * 2048;
  const size = (FIRST_LBA + rootSectors) * SECTOR;
  const used = fs.usedRanges();

  const out = FileIO.create(opts.path, size);
  try {
    writeMbr(out, {
      diskSignature: opts.diskSignature,
      partitions: [{ type: 0x83, bootable: false, startLba: FIRST_LBA, sectors: rootSectors }],
    });
    const dst = partitionIO(out, {
      index: 1,
      type: 0x83,
      bootable: false,
      startLba: FIRST_LBA,
      sectors: rootSectors,
      start: FIRST_LBA * SECTOR,
      size: rootSectors * SECTOR,
    });
    copyRanges(src, dst, used, { onProgress: opts.onProgress, phase: 'copy root', detail: opts.detail });
    out.sync();
  } finally {
    out.close();
  }
  return {
    path: opts.path,
    size,
    diskSignature: opts.diskSignature,
    rootPartUuid: partUuid(opts.diskSignature, 1),
    mapped: [{ start: 0, length: SECTOR }, ...used.map((r) => ({ start: r.start + FIRST_LBA * SECTOR, length: r.length }))],
  };
}
