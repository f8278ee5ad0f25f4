// The ext2/3/4 superblock: a pure codec of all 1024 bytes (SUPERBLOCK), the checks and the derived values the
// read-only engine needs (decodeSuperblock), feature flags, and the magic probe (isExt4).
// Invariants: only readSuperblock does I/O (one read); errors carry image offsets (the BlockIO's base is added).
import type { BlockIO } from '../io.ts';
import { CorruptImageError } from '../../errors.ts';
import { layout } from '../layout.ts';

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

/** The 1024 bytes of the superblock, every field of the kernel's struct ext4_super_block (ext4.h). */
export const SUPERBLOCK = layout('ext4 superblock', 1024, {
  inodesCount: [0x0, 'u32'],
  blocksCountLo: [0x4, 'u32'],
  rBlocksCountLo: [0x8, 'u32'],
  freeBlocksCountLo: [0xc, 'u32'],
  freeInodesCount: [0x10, 'u32'],
  firstDataBlock: [0x14, 'u32'],
  logBlockSize: [0x18, 'u32'],
  logClusterSize: [0x1c, 'u32'],
  blocksPerGroup: [0x20, 'u32'],
  clustersPerGroup: [0x24, 'u32'],
  inodesPerGroup: [0x28, 'u32'],
  mtime: [0x2c, 'u32'],
  wtime: [0x30, 'u32'],
  mntCount: [0x34, 'u16'],
  maxMntCount: [0x36, 'u16'],
  magic: [0x38, 'u16'],
  state: [0x3a, 'u16'],
  errors: [0x3c, 'u16'],
  minorRevLevel: [0x3e, 'u16'],
  lastCheck: [0x40, 'u32'],
  checkInterval: [0x44, 'u32'],
  creatorOs: [0x48, 'u32'],
  revLevel: [0x4c, 'u32'],
  defResuid: [0x50, 'u16'],
  defResgid: [0x52, 'u16'],
  firstIno: [0x54, 'u32'],
  inodeSize: [0x58, 'u16'],
  blockGroupNr: [0x5a, 'u16'],
  featureCompat: [0x5c, 'u32'],
  featureIncompat: [0x60, 'u32'],
  featureRoCompat: [0x64, 'u32'],
  uuid: [0x68, 'bytes', 16],
  volumeName: [0x78, 'bytes', 16],
  lastMounted: [0x88, 'bytes', 64],
  algorithmUsageBitmap: [0xc8, 'u32'],
  preallocBlocks: [0xcc, 'u8'],
  preallocDirBlocks: [0xcd, 'u8'],
  reservedGdtBlocks: [0xce, 'u16'],
  journalUuid: [0xd0, 'bytes', 16],
  journalInum: [0xe0, 'u32'],
  journalDev: [0xe4, 'u32'],
  lastOrphan: [0xe8, 'u32'],
  hashSeed: [0xec, 'bytes', 16],
  defHashVersion: [0xfc, 'u8'],
  jnlBackupType: [0xfd, 'u8'],
  descSize: [0xfe, 'u16'],
  defaultMountOpts: [0x100, 'u32'],
  firstMetaBg: [0x104, 'u32'],
  mkfsTime: [0x108, 'u32'],
  jnlBlocks: [0x10c, 'bytes', 68],
  blocksCountHi: [0x150, 'u32'],
  rBlocksCountHi: [0x154, 'u32'],
  freeBlocksCountHi: [0x158, 'u32'],
  minExtraIsize: [0x15c, 'u16'],
  wantExtraIsize: [0x15e, 'u16'],
  flags: [0x160, 'u32'],
  raidStride: [0x164, 'u16'],
  mmpInterval: [0x166, 'u16'],
  mmpBlock: [0x168, 'u64'],
  raidStripeWidth: [0x170, 'u32'],
  logGroupsPerFlex: [0x174, 'u8'],
  checksumType: [0x175, 'u8'],
  encryptionLevel: [0x176, 'u8'],
  reservedPad: [0x177, 'u8'],
  kbytesWritten: [0x178, 'u64'],
  snapshotInum: [0x180, 'u32'],
  snapshotId: [0x184, 'u32'],
  snapshotRBlocksCount: [0x188, 'u64'],
  snapshotList: [0x190, 'u32'],
  errorCount: [0x194, 'u32'],
  firstErrorTime: [0x198, 'u32'],
  firstErrorIno: [0x19c, 'u32'],
  firstErrorBlock: [0x1a0, 'u64'],
  firstErrorFunc: [0x1a8, 'bytes', 32],
  firstErrorLine: [0x1c8, 'u32'],
  lastErrorTime: [0x1cc, 'u32'],
  lastErrorIno: [0x1d0, 'u32'],
  lastErrorLine: [0x1d4, 'u32'],
  lastErrorBlock: [0x1d8, 'u64'],
  lastErrorFunc: [0x1e0, 'bytes', 32],
  mountOpts: [0x200, 'bytes', 64],
  usrQuotaInum: [0x240, 'u32'],
  grpQuotaInum: [0x244, 'u32'],
  overheadClusters: [0x248, 'u32'],
  backupBg0: [0x24c, 'u32'],
  backupBg1: [0x250, 'u32'],
  encryptAlgos: [0x254, 'bytes', 4],
  encryptPwSalt: [0x258, 'bytes', 16],
  lpfIno: [0x268, 'u32'],
  prjQuotaInum: [0x26c, 'u32'],
  checksumSeed: [0x270, 'u32'],
  timeHi: [0x274, 'bytes', 6],
  firstErrorErrcode: [0x27a, 'u8'],
  lastErrorErrcode: [0x27b, 'u8'],
  encoding: [0x27c, 'u16'],
  encodingFlags: [0x27e, 'u16'],
  orphanFileInum: [0x280, 'u32'],
  reserved: [0x284, 'bytes', 376],
  checksum: [0x3fc, 'u32'],
});
export type SuperblockFields = ReturnType<typeof SUPERBLOCK.decode>;

/** Decode the 1024 superblock bytes at `at` in `buf` (pure, every byte, no checks). */
export function decodeSuperblockFields(buf: Buffer, at = 0): SuperblockFields {
  return SUPERBLOCK.decode(buf, at);
}

/** Encode superblock fields (1024 bytes); the inverse of decodeSuperblockFields. */
export function encodeSuperblockFields(f: SuperblockFields): Buffer {
  return SUPERBLOCK.encode(f);
}

/** A quick probe (pure): do these bytes, the first 2048 of a volume, hold an ext2/3/4 superblock magic? */
export function isExt4(buf: Uint8Array): boolean {
  return buf.length >= SUPERBLOCK_OFFSET + 0x3a && (buf[SUPERBLOCK_OFFSET + 0x38] | (buf[SUPERBLOCK_OFFSET + 0x39] << 8)) === EXT4_MAGIC;
}

function uuidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Read the primary superblock of the filesystem on `io` (one read) and check it (decodeSuperblock). */
export function readSuperblock(io: BlockIO): Superblock {
  if (io.size < SUPERBLOCK_OFFSET + 1024) {
    throw new CorruptImageError(`${io.name}: too small (${io.size} bytes) to hold an ext4 superblock`, io.base);
  }
  return decodeSuperblock(io.read(SUPERBLOCK_OFFSET, 1024), { name: io.name, volumeSize: io.size, at: io.base + SUPERBLOCK_OFFSET });
}

/**
 * Decode and sanity-check a superblock (pure): the 1024 bytes, the size of the volume it is on, and the image
 * offset of the superblock (`at`) for errors.
 */
export function decodeSuperblock(buf: Buffer, ctx: { name: string; volumeSize: number; at: number }): Superblock {
  const f = decodeSuperblockFields(buf);
  const name = ctx.name;
  const at = ctx.at;
  if (f.magic !== EXT4_MAGIC) {
    throw new CorruptImageError(
      `${name}: not an ext2/3/4 filesystem (superblock magic 0x${f.magic.toString(16).padStart(4, '0')}, expected 0xef53)`,
      at + 0x38,
      'Check the partition number: the ext4 root of a Pi image is usually partition 2.',
    );
  }
  if (f.logBlockSize > 6) throw new CorruptImageError(`${name}: ext4 block size 2^(10+${f.logBlockSize}) is invalid`, at + 0x18);
  const blockSize = 1024 << f.logBlockSize;
  const incompat = f.featureIncompat;
  const roCompat = f.featureRoCompat;
  const is64 = (incompat & INCOMPAT.BIT64) !== 0;
  const blocksCount = f.blocksCountLo + (is64 ? f.blocksCountHi * 2 ** 32 : 0);
  const freeBlocks = f.freeBlocksCountLo + (is64 ? f.freeBlocksCountHi * 2 ** 32 : 0);
  const revLevel = f.revLevel;
  const inodeSize = revLevel === 0 ? 128 : f.inodeSize;
  const descSize = is64 ? f.descSize || 32 : 32;
  const { blocksPerGroup, inodesPerGroup, firstDataBlock } = f;
  const unknown = incompat & ~KNOWN_INCOMPAT;
  if (unknown) {
    throw new CorruptImageError(`${name}: ext4 uses incompatible features this reader does not support (0x${unknown.toString(16)})`, at + 0x60);
  }
  if (blocksPerGroup === 0 || inodesPerGroup === 0 || inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1))) {
    throw new CorruptImageError(
      `${name}: ext4 superblock has impossible geometry (blocks/group ${blocksPerGroup}, inodes/group ${inodesPerGroup}, inode size ${inodeSize})`,
      at,
    );
  }
  if (descSize < 32 || descSize > blockSize || (descSize & (descSize - 1))) {
    throw new CorruptImageError(`${name}: ext4 group descriptor size ${descSize} is invalid`, at + 0xfe);
  }
  if (blocksCount * blockSize > ctx.volumeSize) {
    throw new CorruptImageError(
      `${name}: ext4 claims ${blocksCount} blocks of ${blockSize} bytes but the partition holds only ${ctx.volumeSize} bytes (truncated image?)`,
      at + 0x4,
    );
  }
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  // Counts every walk and every bitmap read trusts: each group holds inodesPerGroup inodes, free ≤ total.
  const inodesCount = f.inodesCount;
  const freeInodes = f.freeInodesCount;
  if (inodesCount !== inodesPerGroup * groupCount) {
    throw new CorruptImageError(
      `${name}: ext4 superblock counts ${inodesCount} inodes, but its ${groupCount} groups of ${inodesPerGroup} hold ${inodesPerGroup * groupCount}`,
      at,
    );
  }
  if (freeBlocks > blocksCount || freeInodes > inodesCount) {
    throw new CorruptImageError(
      `${name}: ext4 superblock counts more free ${freeBlocks > blocksCount ? `blocks (${freeBlocks}) than blocks (${blocksCount})` : `inodes (${freeInodes}) than inodes (${inodesCount})`}`,
      at + (freeBlocks > blocksCount ? 0xc : 0x10),
    );
  }
  return {
    inodesCount,
    blocksCount,
    freeBlocks,
    freeInodes,
    firstDataBlock,
    blockSize,
    clusterSize: (roCompat & RO_COMPAT.BIGALLOC) !== 0 ? 1024 << f.logClusterSize : blockSize,
    blocksPerGroup,
    clustersPerGroup: f.clustersPerGroup,
    inodesPerGroup,
    revLevel,
    firstIno: revLevel === 0 ? 11 : f.firstIno,
    inodeSize,
    compat: f.featureCompat,
    incompat,
    roCompat,
    uuid: uuidString(f.uuid),
    label: f.volumeName.toString('latin1').replace(/\0.*$/s, ''),
    descSize,
    reservedGdtBlocks: f.reservedGdtBlocks,
    firstMetaBg: f.firstMetaBg,
    backupBgs: [f.backupBg0, f.backupBg1],
    groupCount,
  };
}
