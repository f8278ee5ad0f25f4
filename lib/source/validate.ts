// The check a raw image passes before it enters the cache: its partition table, and on each FAT and ext4 partition
// the structures a build reads (FAT: boot sector, every directory and every file's cluster chain; ext4: superblock,
// group descriptors, block bitmaps, the root directory), through lib/image's own readers and their checks.
// Invariants: reads only; a failure is a CorruptImageError naming the image as the user gave it (`name`), never a
// cache temp file; the walk is bounded (every directory is visited once: a loop is reported, not followed).
import { SliceIO, type BlockIO } from '../image/io.ts';
import { readTable, type PartitionTable } from '../image/partition-table.ts';
import { probeFs } from '../image/probe.ts';
import { FAT_MBR_TYPES } from '../image/mbr.ts';
import { FatFs } from '../image/fat/index.ts';
import { Ext4Fs } from '../image/ext4/index.ts';


/** Read and check the partition table (MBR or GPT) and filesystems of the image in `file`; `name` is what errors
 *  call it. */
export function validateImage(file: BlockIO, name: string): PartitionTable {
  const io = new SliceIO(file, 0, file.size, name);
  const table = readTable(io);
  for (const p of table.partitions) {
    if (p.extended) continue;
    const part = new SliceIO(io, p.start, p.size, `${name} partition ${p.index}`);
    const kind = probeFs(part); // a FAT-typed MBR partition gets the FAT checks even when its boot sector is damaged
    if (kind === 'vfat' || (table.scheme === 'mbr' && FAT_MBR_TYPES.has(p.type))) checkFat(part);
    else if (kind === 'ext4') checkExt4(part);
  }
  return table;
}

/** Every directory once (a directory met again is a loop), every file's chain walked to its end: FatFs.checkTree,
 *  the walk inspect, build and netboot also use. */
function checkFat(io: BlockIO): void {
  const fs = FatFs.open(io);
  fs.checkTree();
  fs.usedRanges();
}

/** Superblock and group descriptors (Ext4Fs.open), every block bitmap (usedRanges), the root directory. */
function checkExt4(io: BlockIO): void {
  const fs = Ext4Fs.open(io);
  fs.usedRanges();
  fs.readdir('/');
}
