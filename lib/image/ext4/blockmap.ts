// File block mapping: extent trees of any depth and legacy direct/indirect/double/triple block maps, both turned
// into runs of (logical block, physical block, length), lazily and in logical order. Holes are simply missing.
// The extent header, leaf and index entries are pure layouts; errors carry image offsets (inode.offset is one).
import type { BlockIO } from '../io.ts';
import { CorruptImageError } from '../../errors.ts';
import { layout } from '../layout.ts';
import type { Superblock } from './superblock.ts';
import { INODE_FLAGS, type Inode } from './inode.ts';

export interface BlockRun {
  logical: number;
  physical: number;
  length: number;
  /** Allocated but unwritten (an uninitialized extent): reads as zeros. */
  uninit: boolean;
}

export const EXTENT_MAGIC = 0xf30a;

/** The 12-byte header of an extent node (in i_block or a tree block). */
export const EXTENT_HEADER = layout('ext4 extent header', 12, {
  magic: [0, 'u16'],
  entries: [2, 'u16'],
  max: [4, 'u16'],
  depth: [6, 'u16'],
  generation: [8, 'u32'],
});
/** A leaf entry: logical block, length (over 32768: uninitialized), 48-bit physical start. */
export const EXTENT = layout('ext4 extent', 12, {
  block: [0, 'u32'],
  len: [4, 'u16'],
  startHi: [6, 'u16'],
  startLo: [8, 'u32'],
});
/** An index entry: first logical block covered, 48-bit block of the child node. */
export const EXTENT_INDEX = layout('ext4 extent index', 12, {
  block: [0, 'u32'],
  leafLo: [4, 'u32'],
  leafHi: [8, 'u16'],
  unused: [10, 'u16'],
});
export type ExtentHeader = ReturnType<typeof EXTENT_HEADER.decode>;

function checkPhysical(io: BlockIO, sb: Superblock, inode: Inode, physical: number, length: number, where: number): void {
  if (physical < sb.firstDataBlock || physical + length > sb.blocksCount) {
    throw new CorruptImageError(
      `${io.name}: ext4 inode ${inode.ino} maps blocks ${physical}..${physical + length - 1}, beyond the filesystem (${sb.blocksCount} blocks)`,
      where,
    );
  }
}

/** `where` is the image offset of `node`, for errors. */
function* extentNode(io: BlockIO, sb: Superblock, inode: Inode, node: Buffer, where: number, depthLeft: number): Iterable<BlockRun> {
  const h = node.length >= 12 ? EXTENT_HEADER.decode(node) : undefined;
  if (!h || h.magic !== EXTENT_MAGIC) {
    throw new CorruptImageError(`${io.name}: ext4 inode ${inode.ino} has a damaged extent node (bad magic)`, where);
  }
  const { entries, depth } = h;
  if (depth !== depthLeft || 12 + entries * 12 > node.length) {
    throw new CorruptImageError(
      `${io.name}: ext4 inode ${inode.ino} has a damaged extent node (depth ${depth}, ${entries} entries)`,
      where,
    );
  }
  for (let i = 0; i < entries; i++) {
    const e = 12 + i * 12;
    if (depth === 0) {
      const x = EXTENT.decode(node, e);
      let len = x.len;
      const uninit = len > 32768;
      if (uninit) len -= 32768;
      const physical = x.startHi * 2 ** 32 + x.startLo;
      if (len === 0) continue;
      checkPhysical(io, sb, inode, physical, len, where + e);
      yield { logical: x.block, physical, length: len, uninit };
    } else {
      const x = EXTENT_INDEX.decode(node, e);
      const leaf = x.leafLo + x.leafHi * 2 ** 32;
      checkPhysical(io, sb, inode, leaf, 1, where + e);
      const child = io.read(leaf * sb.blockSize, sb.blockSize);
      yield* extentNode(io, sb, inode, child, io.base + leaf * sb.blockSize, depth - 1);
    }
  }
}

/** Walk an indirect block tree of `level` (0 = the pointer itself is a data block). */
function* indirect(
  io: BlockIO, sb: Superblock, inode: Inode, ptr: number, level: number, logical: number, limit: number, where: number,
): Iterable<BlockRun> {
  if (ptr === 0 || logical >= limit) return;
  checkPhysical(io, sb, inode, ptr, 1, where);
  if (level === 0) {
    yield { logical, physical: ptr, length: 1, uninit: false };
    return;
  }
  const per = sb.blockSize / 4;
  const span = per ** (level - 1);
  const blk = io.read(ptr * sb.blockSize, sb.blockSize);
  for (let i = 0; i < per; i++) {
    const l = logical + i * span;
    if (l >= limit) return;
    const p = blk.readUInt32LE(i * 4);
    if (p) yield* indirect(io, sb, inode, p, level - 1, l, limit, io.base + ptr * sb.blockSize + i * 4);
  }
}

function* blockMapRuns(io: BlockIO, sb: Superblock, inode: Inode): Iterable<BlockRun> {
  const limit = Math.ceil(inode.size / sb.blockSize);
  const per = sb.blockSize / 4;
  const ib = inode.iblock;
  const gen = function* (): Iterable<BlockRun> {
    for (let i = 0; i < 12; i++) yield* indirect(io, sb, inode, ib.readUInt32LE(i * 4), 0, i, limit, inode.offset + 0x28 + i * 4);
    yield* indirect(io, sb, inode, ib.readUInt32LE(48), 1, 12, limit, inode.offset + 0x28 + 48);
    yield* indirect(io, sb, inode, ib.readUInt32LE(52), 2, 12 + per, limit, inode.offset + 0x28 + 52);
    yield* indirect(io, sb, inode, ib.readUInt32LE(56), 3, 12 + per + per * per, limit, inode.offset + 0x28 + 56);
  };
  // Merge single blocks into runs.
  let cur: BlockRun | undefined;
  for (const r of gen()) {
    if (cur && cur.logical + cur.length === r.logical && cur.physical + cur.length === r.physical) cur.length += r.length;
    else {
      if (cur) yield cur;
      cur = { ...r };
    }
  }
  if (cur) yield cur;
}

/** The runs of a file or directory (not for inline-data inodes or fast symlinks). */
export function blockRuns(io: BlockIO, sb: Superblock, inode: Inode): Iterable<BlockRun> {
  if (inode.flags & INODE_FLAGS.EXTENTS) {
    const depth = EXTENT_HEADER.decode(inode.iblock).depth;
    if (depth > 5) {
      throw new CorruptImageError(`${io.name}: ext4 inode ${inode.ino} extent tree depth ${depth} is impossible`, inode.offset + 0x28);
    }
    return extentNode(io, sb, inode, inode.iblock, inode.offset + 0x28, depth);
  }
  return blockMapRuns(io, sb, inode);
}
