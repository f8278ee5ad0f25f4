// File block mapping: extent trees of any depth and legacy direct/indirect/double/triple block maps, both turned
// into runs of (logical block, physical block, length), lazily and in logical order. Holes are simply missing.
import type { BlockIO } from '../io.ts';
import { CorruptImageError } from '../../errors.ts';
import type { Superblock } from './superblock.ts';
import { INODE_FLAGS, type Inode } from './inode.ts';

export interface BlockRun {
  logical: number;
  physical: number;
  length: number;
  /** Allocated but unwritten (an uninitialized extent): reads as zeros. */
  uninit: boolean;
}

const EXTENT_MAGIC = 0xf30a;

function checkPhysical(io: BlockIO, sb: Superblock, inode: Inode, physical: number, length: number, where: number): void {
  if (physical < sb.firstDataBlock || physical + length > sb.blocksCount) {
    throw new CorruptImageError(
      `${io.name}: ext4 inode ${inode.ino} maps blocks ${physical}..${physical + length - 1}, beyond the filesystem (${sb.blocksCount} blocks)`,
      where,
    );
  }
}

function* extentNode(io: BlockIO, sb: Superblock, inode: Inode, node: Buffer, where: number, depthLeft: number): Iterable<BlockRun> {
  if (node.length < 12 || node.readUInt16LE(0) !== EXTENT_MAGIC) {
    throw new CorruptImageError(`${io.name}: ext4 inode ${inode.ino} has a damaged extent node (bad magic)`, where);
  }
  const entries = node.readUInt16LE(2);
  const depth = node.readUInt16LE(6);
  if (depth !== depthLeft || 12 + entries * 12 > node.length) {
    throw new CorruptImageError(
      `${io.name}: ext4 inode ${inode.ino} has a damaged extent node (depth ${depth}, ${entries} entries)`,
      where,
    );
  }
  for (let i = 0; i < entries; i++) {
    const e = 12 + i * 12;
    if (depth === 0) {
      const logical = node.readUInt32LE(e);
      let len = node.readUInt16LE(e + 4);
      const uninit = len > 32768;
      if (uninit) len -= 32768;
      const physical = node.readUInt16LE(e + 6) * 2 ** 32 + node.readUInt32LE(e + 8);
      if (len === 0) continue;
      checkPhysical(io, sb, inode, physical, len, where + e);
      yield { logical, physical, length: len, uninit };
    } else {
      const leaf = node.readUInt32LE(e + 4) + node.readUInt16LE(e + 8) * 2 ** 32;
      checkPhysical(io, sb, inode, leaf, 1, where + e);
      const child = io.read(leaf * sb.blockSize, sb.blockSize);
      yield* extentNode(io, sb, inode, child, leaf * sb.blockSize, depth - 1);
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
    if (p) yield* indirect(io, sb, inode, p, level - 1, l, limit, ptr * sb.blockSize + i * 4);
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
    const depth = inode.iblock.readUInt16LE(6);
    if (depth > 5) {
      throw new CorruptImageError(`${io.name}: ext4 inode ${inode.ino} extent tree depth ${depth} is impossible`, inode.offset + 0x28);
    }
    return extentNode(io, sb, inode, inode.iblock, inode.offset + 0x28, depth);
  }
  return blockMapRuns(io, sb, inode);
}
