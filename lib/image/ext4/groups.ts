// Block group descriptors (32- and 64-byte, with or without meta_bg) and the used-block map built from the block
// bitmaps, including groups whose bitmap was never initialised (BLOCK_UNINIT), the way e2fsprogs reads them.
import type { BlockIO } from '../io.ts';
import { CorruptImageError } from '../../errors.ts';
import { layout } from '../layout.ts';
import { COMPAT, INCOMPAT, RO_COMPAT, type Superblock } from './superblock.ts';
export type { ByteRange } from '../sparse.ts';

export const BG_INODE_UNINIT = 0x1;
export const BG_BLOCK_UNINIT = 0x2;

export interface GroupDesc {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  freeBlocks: number;
  freeInodes: number;
  flags: number;
}


const GD_LO = {
  blockBitmapLo: [0x0, 'u32'],
  inodeBitmapLo: [0x4, 'u32'],
  inodeTableLo: [0x8, 'u32'],
  freeBlocksCountLo: [0xc, 'u16'],
  freeInodesCountLo: [0xe, 'u16'],
  usedDirsCountLo: [0x10, 'u16'],
  flags: [0x12, 'u16'],
  excludeBitmapLo: [0x14, 'u32'],
  blockBitmapCsumLo: [0x18, 'u16'],
  inodeBitmapCsumLo: [0x1a, 'u16'],
  itableUnusedLo: [0x1c, 'u16'],
  checksum: [0x1e, 'u16'],
} as const;
/** A 32-byte group descriptor (without the 64bit feature). */
export const GROUP_DESC_32 = layout('ext4 group descriptor (32)', 32, GD_LO);
/** A 64-byte group descriptor (64bit feature): the 32-byte one plus the high halves. */
export const GROUP_DESC_64 = layout('ext4 group descriptor (64)', 64, {
  ...GD_LO,
  blockBitmapHi: [0x20, 'u32'],
  inodeBitmapHi: [0x24, 'u32'],
  inodeTableHi: [0x28, 'u32'],
  freeBlocksCountHi: [0x2c, 'u16'],
  freeInodesCountHi: [0x2e, 'u16'],
  usedDirsCountHi: [0x30, 'u16'],
  itableUnusedHi: [0x32, 'u16'],
  excludeBitmapHi: [0x34, 'u32'],
  blockBitmapCsumHi: [0x38, 'u16'],
  inodeBitmapCsumHi: [0x3a, 'u16'],
  reserved: [0x3c, 'u32'],
});
export type GroupDescFields = ReturnType<typeof GROUP_DESC_64.decode> | ReturnType<typeof GROUP_DESC_32.decode>;

/** Decode one descriptor at `at` in `buf` (pure, every byte): 64 bytes when `wide`, else 32. */
export function decodeGroupDesc(buf: Buffer, wide: boolean, at = 0): GroupDescFields {
  return wide ? GROUP_DESC_64.decode(buf, at) : GROUP_DESC_32.decode(buf, at);
}

/** Encode one descriptor (64 bytes when it has the high halves, else 32). */
export function encodeGroupDesc(d: GroupDescFields): Buffer {
  return 'blockBitmapHi' in d ? GROUP_DESC_64.encode(d) : GROUP_DESC_32.encode(d);
}

/** The values the reader uses, lo and hi halves joined. */
export function groupDesc(d: GroupDescFields): GroupDesc {
  const w = 'blockBitmapHi' in d ? d : undefined;
  return {
    blockBitmap: d.blockBitmapLo + (w ? w.blockBitmapHi * 2 ** 32 : 0),
    inodeBitmap: d.inodeBitmapLo + (w ? w.inodeBitmapHi * 2 ** 32 : 0),
    inodeTable: d.inodeTableLo + (w ? w.inodeTableHi * 2 ** 32 : 0),
    freeBlocks: d.freeBlocksCountLo + (w ? w.freeBlocksCountHi * 65536 : 0),
    freeInodes: d.freeInodesCountLo + (w ? w.freeInodesCountHi * 65536 : 0),
    flags: d.flags,
  };
}

function isPowerOf(n: number, base: number): boolean {
  while (n > 1 && n % base === 0) n /= base;
  return n === 1;
}

/** Does block group `g` carry a superblock backup (and, without meta_bg, a copy of the descriptor table)? */
export function groupHasSuper(sb: Superblock, g: number): boolean {
  if (g === 0) return true;
  if (sb.compat & COMPAT.SPARSE_SUPER2) return g === sb.backupBgs[0] || g === sb.backupBgs[1];
  if (g <= 1 || !(sb.roCompat & RO_COMPAT.SPARSE_SUPER)) return true;
  if (!(g & 1)) return false;
  return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
}

export function groupFirstBlock(sb: Superblock, g: number): number {
  return sb.firstDataBlock + g * sb.blocksPerGroup;
}

export function descsPerBlock(sb: Superblock): number {
  return sb.blockSize / sb.descSize;
}

/** Number of blocks the group descriptor table takes. */
export function descBlockCount(sb: Superblock): number {
  return Math.ceil(sb.groupCount / descsPerBlock(sb));
}

/** Block number of descriptor-table block `i` (meta_bg moves later ones into their meta group). */
function descBlockLocation(sb: Superblock, i: number): number {
  const base = sb.firstDataBlock + 1;
  if (!(sb.incompat & INCOMPAT.META_BG) || i < sb.firstMetaBg) return base + i;
  const g = i * descsPerBlock(sb);
  return groupFirstBlock(sb, g) + (groupHasSuper(sb, g) ? 1 : 0);
}

/** Read all group descriptors. */
export function readGroupDescs(io: BlockIO, sb: Superblock): GroupDesc[] {
  const out: GroupDesc[] = [];
  const per = descsPerBlock(sb);
  const wide = sb.descSize >= 64;
  for (let i = 0; out.length < sb.groupCount; i++) {
    const blk = descBlockLocation(sb, i);
    if (blk >= sb.blocksCount) {
      throw new CorruptImageError(`${io.name}: ext4 group descriptor block ${blk} is beyond the filesystem`, io.base + blk * sb.blockSize);
    }
    const buf = io.read(blk * sb.blockSize, sb.blockSize);
    for (let j = 0; j < per && out.length < sb.groupCount; j++) {
      const g = groupDesc(decodeGroupDesc(buf, wide, j * sb.descSize));
      const gi = out.length;
      for (const [what, v] of [['block bitmap', g.blockBitmap], ['inode bitmap', g.inodeBitmap], ['inode table', g.inodeTable]] as const) {
        if (v >= sb.blocksCount) {
          throw new CorruptImageError(
            `${io.name}: ext4 group ${gi} ${what} at block ${v} is beyond the filesystem (${sb.blocksCount} blocks)`,
            io.base + blk * sb.blockSize + j * sb.descSize,
          );
        }
      }
      out.push(g);
    }
  }
  return out;
}

/** Blocks of group `g` holding the superblock copy, descriptor table copy and reserved GDT blocks (relative to
 *  the filesystem), as e2fsprogs' ext2fs_reserve_super_and_bgd counts them. */
export function superAndDescBlocks(sb: Superblock, g: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  const first = groupFirstBlock(sb, g);
  const hasSuper = groupHasSuper(sb, g);
  if (g === 0 && sb.firstDataBlock === 0 && !hasSuper) runs.push([0, 1]);
  let next = first;
  if (hasSuper) {
    runs.push([first, 1]);
    next = first + 1;
  }
  if (sb.incompat & INCOMPAT.META_BG) {
    const oldDesc = sb.firstMetaBg;
    if (hasSuper && oldDesc > 0) runs.push([next, oldDesc]);
    const per = descsPerBlock(sb);
    const metaBg = Math.floor(g / per);
    const inMeta = g % per;
    if (metaBg >= sb.firstMetaBg && (inMeta === 0 || inMeta === 1 || inMeta === per - 1)) {
      runs.push([first + (hasSuper ? 1 : 0), 1]);
    }
  } else if (hasSuper) {
    runs.push([next, descBlockCount(sb) + sb.reservedGdtBlocks]);
  }
  return runs;
}

/** Inclusive-exclusive block bounds of group `g`. */
export function groupBounds(sb: Superblock, g: number): [number, number] {
  const start = groupFirstBlock(sb, g);
  return [start, Math.min(start + sb.blocksPerGroup, sb.blocksCount)];
}

/** Iterate the used runs of blocks, merged, as [firstBlock, count], in ascending order. Blocks before
 *  s_first_data_block (the 1 KiB boot block of 1 KiB-block filesystems) count as used. */
export function* usedBlockRuns(io: BlockIO, sb: Superblock, groups: GroupDesc[], opts: { perGroup?: boolean } = {}): Iterable<[number, number]> {
  let runStart = -1;
  let runEnd = -1;
  const add = (s: number, n: number): [number, number] | undefined => {
    if (n <= 0) return undefined;
    if (s === runEnd) {
      runEnd += n;
      return undefined;
    }
    const prev: [number, number] | undefined = runStart >= 0 ? [runStart, runEnd - runStart] : undefined;
    runStart = s;
    runEnd = s + n;
    return prev;
  };
  const out: Array<[number, number]> = [];
  const flush = (r: [number, number] | undefined): void => {
    if (r) out.push(r);
  };
  flush(add(0, sb.firstDataBlock));
  const ratio = sb.clusterSize / sb.blockSize;
  const csum = (sb.roCompat & (RO_COMPAT.GDT_CSUM | RO_COMPAT.METADATA_CSUM)) !== 0;
  for (let g = 0; g < groups.length; g++) {
    const gd = groups[g];
    const [start, end] = groupBounds(sb, g);
    if (csum && gd.flags & BG_BLOCK_UNINIT) {
      // No bitmap on disk: only the group's own metadata is in use (e2fsprogs: mark_uninit_bg_group_blocks).
      const marks: Array<[number, number]> = [...superAndDescBlocks(sb, g)];
      marks.push([gd.blockBitmap, 1], [gd.inodeBitmap, 1]);
      const itBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
      marks.push([gd.inodeTable, itBlocks]);
      // Only those inside this group are reported here; metadata in other groups (flex_bg) is in their bitmaps.
      const inGroup = marks
        .map(([s, n]): [number, number] => [Math.max(s, start), Math.min(s + n, end)])
        .filter(([s, e]) => e > s)
        .sort((a, b) => a[0] - b[0]);
      let cursor = start;
      for (const [s, e] of inGroup) {
        const from = Math.max(s, cursor);
        if (e > from) flush(add(from, e - from));
        cursor = Math.max(cursor, e);
      }
      for (const r of out.splice(0)) yield r;
      yield* endOfGroup();
      continue;
    }
    const bitmap = io.read(gd.blockBitmap * sb.blockSize, sb.blockSize);
    const clusters = Math.ceil((end - start) / ratio);
    let c = 0;
    while (c < clusters) {
      // Skip whole zero or whole 0xff bytes fast.
      if ((c & 7) === 0 && c + 8 <= clusters) {
        const byte = bitmap[c >> 3];
        if (byte === 0) {
          c += 8;
          continue;
        }
        if (byte === 0xff) {
          const s = start + c * ratio;
          flush(add(s, Math.min(8 * ratio, end - s)));
          c += 8;
          continue;
        }
      }
      if (bitmap[c >> 3] & (1 << (c & 7))) {
        const s = start + c * ratio;
        flush(add(s, Math.min(ratio, end - s)));
      }
      c++;
    }
    for (const r of out.splice(0)) yield r;
    yield* endOfGroup();
  }
  if (runStart >= 0) yield [runStart, runEnd - runStart];

  /** With perGroup, a run is not held back to be merged with the next group's: its bitmap may not be read yet. */
  function* endOfGroup(): Iterable<[number, number]> {
    if (!opts.perGroup || runStart < 0) return;
    yield [runStart, runEnd - runStart];
    runStart = -1;
    runEnd = -1;
  }
}
