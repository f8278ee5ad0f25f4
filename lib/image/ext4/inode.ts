// On-disk inodes: locating one in its group's inode table, decoding mode/owner/size/times/flags, device numbers
// and in-inode extended attributes (needed for inline data). INODE_BASE is the pure codec of the record;
// readInode is the one read; errors carry image offsets.
import type { BlockIO } from '../io.ts';
import { CorruptImageError } from '../../errors.ts';
import type { Superblock } from './superblock.ts';
import type { GroupDesc } from './groups.ts';
import { layout } from '../layout.ts';

/** The first 128 bytes of an on-disk inode (struct ext4_inode up to i_extra_isize). */
export const INODE_BASE = layout('ext4 inode', 128, {
  mode: [0x0, 'u16'],
  uidLo: [0x2, 'u16'],
  sizeLo: [0x4, 'u32'],
  atime: [0x8, 'i32'],
  ctime: [0xc, 'i32'],
  mtime: [0x10, 'i32'],
  dtime: [0x14, 'u32'],
  gidLo: [0x18, 'u16'],
  linksCount: [0x1a, 'u16'],
  blocksLo: [0x1c, 'u32'],
  flags: [0x20, 'u32'],
  osd1: [0x24, 'u32'],
  block: [0x28, 'bytes', 60],
  generation: [0x64, 'u32'],
  fileAclLo: [0x68, 'u32'],
  sizeHi: [0x6c, 'u32'],
  obsoFaddr: [0x70, 'u32'],
  blocksHi: [0x74, 'u16'],
  fileAclHi: [0x76, 'u16'],
  uidHi: [0x78, 'u16'],
  gidHi: [0x7a, 'u16'],
  checksumLo: [0x7c, 'u16'],
  reserved: [0x7e, 'u16'],
});
/** The 16-byte head of an extended attribute entry (struct ext4_xattr_entry); the name follows, padded to 4. */
export const XATTR_ENTRY = layout('ext4 xattr entry', 16, {
  nameLen: [0, 'u8'],
  nameIndex: [1, 'u8'],
  valueOffs: [2, 'u16'],
  valueInum: [4, 'u32'],
  valueSize: [8, 'u32'],
  hash: [12, 'u32'],
});

/** An on-disk inode of any inode size: the 128-byte base and the bytes after it (extra fields, xattrs). */
export type InodeFields = ReturnType<typeof INODE_BASE.decode> & { tail: Buffer };

/** Decode an inode record (pure, every byte). */
export function decodeInodeFields(raw: Buffer): InodeFields {
  return { ...INODE_BASE.decode(raw), tail: Buffer.from(raw.subarray(128)) };
}

/** Encode an inode record (128 + tail bytes); the inverse of decodeInodeFields. */
export function encodeInodeFields(f: InodeFields): Buffer {
  const { tail, ...base } = f;
  return Buffer.concat([INODE_BASE.encode(base), tail]);
}

export const S_IFMT = 0o170000;
export const INODE_FLAGS = { INDEX: 0x1000, HUGE_FILE: 0x40000, EXTENTS: 0x80000, INLINE_DATA: 0x10000000 } as const;

export type FileType = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket';

export function typeFromMode(mode: number): FileType | undefined {
  switch (mode & S_IFMT) {
    case 0o100000: return 'file';
    case 0o040000: return 'dir';
    case 0o120000: return 'symlink';
    case 0o020000: return 'chardev';
    case 0o060000: return 'blockdev';
    case 0o010000: return 'fifo';
    case 0o140000: return 'socket';
    default: return undefined;
  }
}

export interface Inode {
  ino: number;
  /** Image offset of the inode (the volume's base added), for error messages. */
  offset: number;
  mode: number;
  type: FileType;
  uid: number;
  gid: number;
  size: number;
  links: number;
  atime: Date;
  mtime: Date;
  ctime: Date;
  flags: number;
  /** The 60 bytes of i_block: block map, extent root, fast symlink target or inline data. */
  iblock: Buffer;
  /** 512-byte sectors (or fs blocks with HUGE_FILE) in use. */
  blocks: number;
  fileAcl: number;
  /** In-inode extended attribute area (after i_extra_isize), empty when none. */
  xattrArea: Buffer;
  rdev?: { major: number; minor: number };
}

/** Seconds + the 'extra' field (2 epoch bits, 30 nanosecond bits) → Date (ms precision). */
function decodeTime(raw: Buffer, secOff: number, extraOff: number | undefined): Date {
  let secs = raw.readInt32LE(secOff);
  let nsec = 0;
  if (extraOff !== undefined) {
    const extra = raw.readUInt32LE(extraOff);
    secs += (extra & 3) * 2 ** 32;
    nsec = extra >>> 2;
  }
  return new Date(secs * 1000 + Math.floor(nsec / 1e6));
}

/** Locate and decode inode `ino`. */
export function readInode(io: BlockIO, sb: Superblock, groups: GroupDesc[], ino: number): Inode {
  if (!Number.isInteger(ino) || ino < 1 || ino > sb.inodesCount) {
    throw new CorruptImageError(`${io.name}: ext4 inode number ${ino} is out of range (1..${sb.inodesCount})`);
  }
  const g = Math.floor((ino - 1) / sb.inodesPerGroup);
  const idx = (ino - 1) % sb.inodesPerGroup;
  const offset = groups[g].inodeTable * sb.blockSize + idx * sb.inodeSize;
  const raw = io.read(offset, sb.inodeSize);
  return decodeInode(raw, ino, io.base + offset, io.name);
}

/** Decode and check inode `ino` from its record (pure); `offset` is its image offset and `name` the volume's. */
export function decodeInode(raw: Buffer, ino: number, offset: number, name: string): Inode {
  const f = INODE_BASE.decode(raw);
  const mode = f.mode;
  const type = typeFromMode(mode);
  if (!type) {
    throw new CorruptImageError(
      `${name}: ext4 inode ${ino} has an invalid mode 0${mode.toString(8)} (unused or damaged inode)`,
      offset,
    );
  }
  const extraIsize = raw.length > 128 ? raw.readUInt16LE(0x80) : 0;
  const hasExtra = (f: number): boolean => raw.length > 128 && 0x80 + extraIsize >= f + 4;
  const iblock = f.block;
  const inode: Inode = {
    ino,
    offset,
    mode,
    type,
    uid: f.uidLo | (f.uidHi << 16),
    gid: f.gidLo | (f.gidHi << 16),
    size: f.sizeLo + f.sizeHi * 2 ** 32,
    links: f.linksCount,
    atime: decodeTime(raw, 0x8, hasExtra(0x8c) ? 0x8c : undefined),
    ctime: decodeTime(raw, 0xc, hasExtra(0x84) ? 0x84 : undefined),
    mtime: decodeTime(raw, 0x10, hasExtra(0x88) ? 0x88 : undefined),
    flags: f.flags,
    iblock,
    blocks: f.blocksLo + f.blocksHi * 2 ** 32,
    fileAcl: f.fileAclLo + f.fileAclHi * 2 ** 32,
    xattrArea: raw.length > 128 + extraIsize ? Buffer.from(raw.subarray(128 + extraIsize)) : Buffer.alloc(0),
  };
  // Unsigned 32-bit uid/gid (the | above may go negative).
  inode.uid >>>= 0;
  inode.gid >>>= 0;
  if (type === 'chardev' || type === 'blockdev') {
    const old = iblock.readUInt32LE(0);
    if (old) inode.rdev = { major: (old >> 8) & 0xff, minor: old & 0xff };
    else {
      const dev = iblock.readUInt32LE(4);
      inode.rdev = { major: (dev >> 8) & 0xfff, minor: (dev & 0xff) | ((dev >> 12) & 0xfff00) };
    }
  }
  return inode;
}

/** Find an in-inode extended attribute by index and name (e.g. 7/'data' = system.data for inline data). */
export function findInodeXattr(inode: Inode, nameIndex: number, name: string): Buffer | undefined {
  const a = inode.xattrArea;
  if (a.length < 4 || a.readUInt32LE(0) !== 0xea020000) return undefined;
  const base = 4;
  let p = base;
  while (p + 16 <= a.length) {
    const { nameLen, nameIndex: idx, valueOffs, valueInum, valueSize } = XATTR_ENTRY.decode(a, p);
    if (nameLen === 0 && idx === 0 && valueOffs === 0 && valueInum === 0) break;
    const n = a.subarray(p + 16, p + 16 + nameLen).toString('latin1');
    if (idx === nameIndex && n === name && valueInum === 0) {
      if (base + valueOffs + valueSize > a.length) return undefined;
      return Buffer.from(a.subarray(base + valueOffs, base + valueOffs + valueSize));
    }
    p += (16 + nameLen + 3) & ~3;
  }
  return undefined;
}
