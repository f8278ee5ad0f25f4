// The ext2/3/4 superblock: the fields the read-only engine needs, feature flags, and the magic check.
import type { BlockIO } from '../io.ts';
import { CorruptImageError } from '../../errors.ts';

export const SUPERBLOCK_OFFSET = 1024;
export const EXT4_MAGIC = 0xef53;

/** Feature bits (from the kernel's ext4.h). */
export const COMPAT = { HAS_JOURNAL: 0x4, EXT_ATTR: 0x8, RESIZE_INODE: 0x10, DIR_INDEX: 0x20, SPARSE_SUPER2: 0x200 } as const;
export const INCOMPAT = {
  FILETYPE: 0x2,
  RECOVER: 0x4,
  JOURNAL_DEV: 0x8,
  META_BG: 0x10,
  EXTENTS: 0x40,
  BIT64: 0x80,
  MMP: 0x100,
  FLEX_BG: 0x200,
  EA_INODE: 0x400,
  DIRDATA: 0x1000,
  CSUM_SEED: 0x2000,
  LARGEDIR: 0x4000,
  INLINE_DATA: 0x8000,
  ENCRYPT: 0x10000,
  CASEFOLD: 0x20000,
} as const;
export const RO_COMPAT = {
  SPARSE_SUPER: 0x1,
  LARGE_FILE: 0x2,
  HUGE_FILE: 0x8,
  GDT_CSUM: 0x10,
  DIR_NLINK: 0x20,
  EXTRA_ISIZE: 0x40,
  BIGALLOC: 0x200,
  METADATA_CSUM: 0x400,
} as const;

/** Incompatible features this reader understands; anything else is refused rather than misread. */
const KNOWN_INCOMPAT =
  INCOMPAT.FILETYPE | INCOMPAT.RECOVER | INCOMPAT.META_BG | INCOMPAT.EXTENTS | INCOMPAT.BIT64 | INCOMPAT.MMP |
  INCOMPAT.FLEX_BG | INCOMPAT.EA_INODE | INCOMPAT.CSUM_SEED | INCOMPAT.LARGEDIR | INCOMPAT.INLINE_DATA;

export interface Superblock {
  inodesCount: number;
  blocksCount: number;
  freeBlocks: number;
  freeInodes: number;
  firstDataBlock: number;
  blockSize: number;
  clusterSize: number;
  blocksPerGroup: number;
  clustersPerGroup: number;
  inodesPerGroup: number;
  revLevel: number;
  firstIno: number;
  inodeSize: number;
  compat: number;
  incompat: number;
  roCompat: number;
  uuid: string;
  label: string;
  descSize: number;
  reservedGdtBlocks: number;
  firstMetaBg: number;
  backupBgs: [number, number];
  groupCount: number;
}

function uuidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Read and sanity-check the primary superblock of the filesystem on `io`. */
export function readSuperblock(io: BlockIO): Superblock {
  if (io.size < SUPERBLOCK_OFFSET + 1024) {
    throw new CorruptImageError(`${io.name}: too small (${io.size} bytes) to hold an ext4 superblock`, 0);
  }
  const b = io.read(SUPERBLOCK_OFFSET, 1024);
  const magic = b.readUInt16LE(0x38);
  if (magic !== EXT4_MAGIC) {
    throw new CorruptImageError(
      `${io.name}: not an ext2/3/4 filesystem (superblock magic 0x${magic.toString(16).padStart(4, '0')}, expected 0xef53)`,
      SUPERBLOCK_OFFSET + 0x38,
      'Check the partition number: the ext4 root of a Pi image is usually partition 2.',
    );
  }
  const logBlock = b.readUInt32LE(0x18);
  const logCluster = b.readUInt32LE(0x1c);
  if (logBlock > 6) throw new CorruptImageError(`${io.name}: ext4 block size 2^(10+${logBlock}) is invalid`, SUPERBLOCK_OFFSET + 0x18);
  const blockSize = 1024 << logBlock;
  const incompat = b.readUInt32LE(0x60);
  const roCompat = b.readUInt32LE(0x64);
  const is64 = (incompat & INCOMPAT.BIT64) !== 0;
  const blocksCount = b.readUInt32LE(0x4) + (is64 ? b.readUInt32LE(0x150) * 2 ** 32 : 0);
  const freeBlocks = b.readUInt32LE(0xc) + (is64 ? b.readUInt32LE(0x158) * 2 ** 32 : 0);
  const revLevel = b.readUInt32LE(0x4c);
  const inodeSize = revLevel === 0 ? 128 : b.readUInt16LE(0x58);
  const descSize = is64 ? b.readUInt16LE(0xfe) || 32 : 32;
  const blocksPerGroup = b.readUInt32LE(0x20);
  const inodesPerGroup = b.readUInt32LE(0x28);
  const firstDataBlock = b.readUInt32LE(0x14);
  const unknown = incompat & ~KNOWN_INCOMPAT;
  if (unknown) {
    throw new CorruptImageError(
      `${io.name}: ext4 uses incompatible features this reader does not support (0x${unknown.toString(16)})`,
      SUPERBLOCK_OFFSET + 0x60,
    );
  }
  if (blocksPerGroup === 0 || inodesPerGroup === 0 || inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1))) {
    throw new CorruptImageError(
      `${io.name}: ext4 superblock has impossible geometry (blocks/group ${blocksPerGroup}, inodes/group ${inodesPerGroup}, inode size ${inodeSize})`,
      SUPERBLOCK_OFFSET,
    );
  }
  if (descSize < 32 || descSize > blockSize || (descSize & (descSize - 1))) {
    throw new CorruptImageError(`${io.name}: ext4 group descriptor size ${descSize} is invalid`, SUPERBLOCK_OFFSET + 0xfe);
  }
  if (blocksCount * blockSize > io.size) {
    throw new CorruptImageError(
      `${io.name}: ext4 claims ${blocksCount} blocks of ${blockSize} bytes but the partition holds only ${io.size} bytes (truncated image?)`,
      SUPERBLOCK_OFFSET + 0x4,
    );
  }
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  // Counts every walk and every bitmap read trusts: each group holds inodesPerGroup inodes, free ≤ total.
  const inodesCount = b.readUInt32LE(0x0);
  const freeInodes = b.readUInt32LE(0x10);
  if (inodesCount !== inodesPerGroup * groupCount) {
    throw new CorruptImageError(
      `${io.name}: ext4 superblock counts ${inodesCount} inodes, but its ${groupCount} groups of ${inodesPerGroup} hold ${inodesPerGroup * groupCount}`,
      SUPERBLOCK_OFFSET,
    );
  }
  if (freeBlocks > blocksCount || freeInodes > inodesCount) {
    throw new CorruptImageError(
      `${io.name}: ext4 superblock counts more free ${freeBlocks > blocksCount ? `blocks (${freeBlocks}) than blocks (${blocksCount})` : `inodes (${freeInodes}) than inodes (${inodesCount})`}`,
      SUPERBLOCK_OFFSET + (freeBlocks > blocksCount ? 0xc : 0x10),
    );
  }
  return {
    inodesCount,
    blocksCount,
    freeBlocks,
    freeInodes,
    firstDataBlock,
    blockSize,
    clusterSize: (roCompat & RO_COMPAT.BIGALLOC) !== 0 ? 1024 << logCluster : blockSize,
    blocksPerGroup,
    clustersPerGroup: b.readUInt32LE(0x24),
    inodesPerGroup,
    revLevel,
    firstIno: revLevel === 0 ? 11 : b.readUInt32LE(0x54),
    inodeSize,
    compat: b.readUInt32LE(0x5c),
    incompat,
    roCompat,
    uuid: uuidString(b.subarray(0x68, 0x78)),
    label: b.subarray(0x78, 0x88).toString('latin1').replace(/\0.*$/s, ''),
    descSize,
    reservedGdtBlocks: b.readUInt16LE(0xce),
    firstMetaBg: b.readUInt32LE(0x104),
    backupBgs: [b.readUInt32LE(0x24c), b.readUInt32LE(0x250)],
    groupCount,
  };
}
