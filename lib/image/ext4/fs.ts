// Ext4Fs: the read-only ext2/3/4 engine's public face — open a partition, resolve paths (following symlinks
// inside the image), stat, list, stream file contents (holes and unwritten extents as zeros), walk the tree, and
// report the used byte ranges from the block bitmaps for sparse copies.
import type { BlockIO } from '../io.ts';
import { CorruptImageError, NotFoundError, SymlinkLoopError } from '../../errors.ts';
import { readSuperblock, INCOMPAT, RO_COMPAT, COMPAT, type Superblock } from './superblock.ts';
import { readGroupDescs, usedBlockRuns, type GroupDesc } from './groups.ts';
import type { ByteRange } from '../sparse.ts';
import { readInode, findInodeXattr, INODE_FLAGS, type Inode, type FileType } from './inode.ts';
import { blockRuns } from './blockmap.ts';
import { parseDirBlock, type DirEntry } from './directory.ts';
import { walkTree } from '../tree.ts';

export type { ByteRange } from '../sparse.ts';

/** What stat/lstat report: the inode's mode (type bits included), owner, size, links, times and device number. */
export type Ext4Stat = { ino: number } & Pick<Inode, 'mode' | 'type' | 'uid' | 'gid' | 'size' | 'links' | 'atime' | 'mtime' | 'ctime' | 'rdev'>;

export interface Ext4Info {
  blockSize: number;
  blocksCount: number;
  freeBlocks: number;
  inodesCount: number;
  freeInodes: number;
  label: string;
  uuid: string;
  features: {
    has64bit: boolean;
    flexBg: boolean;
    metadataCsum: boolean;
    extents: boolean;
    htree: boolean;
    inlineData: boolean;
    compat: number;
    incompat: number;
    roCompat: number;
  };
}

export const ROOT_INO = 2;
const CHUNK = 1 << 20;
const MAX_SYMLINK_HOPS = 40;

function toStat(i: Inode): Ext4Stat {
  const s: Ext4Stat = {
    ino: i.ino, mode: i.mode, type: i.type, uid: i.uid, gid: i.gid, size: i.size, links: i.links,
    atime: i.atime, mtime: i.mtime, ctime: i.ctime,
  };
  if (i.rdev) s.rdev = i.rdev;
  return s;
}

export class Ext4Fs {
  readonly io: BlockIO;
  readonly sb: Superblock;
  readonly groups: GroupDesc[];
  readonly info: Ext4Info;

  private constructor(io: BlockIO) {
    this.io = io;
    this.sb = readSuperblock(io);
    this.groups = readGroupDescs(io, this.sb);
    const sb = this.sb;
    this.info = {
      blockSize: sb.blockSize,
      blocksCount: sb.blocksCount,
      freeBlocks: sb.freeBlocks,
      inodesCount: sb.inodesCount,
      freeInodes: sb.freeInodes,
      label: sb.label,
      uuid: sb.uuid,
      features: {
        has64bit: (sb.incompat & INCOMPAT.BIT64) !== 0,
        flexBg: (sb.incompat & INCOMPAT.FLEX_BG) !== 0,
        metadataCsum: (sb.roCompat & RO_COMPAT.METADATA_CSUM) !== 0,
        extents: (sb.incompat & INCOMPAT.EXTENTS) !== 0,
        htree: (sb.compat & COMPAT.DIR_INDEX) !== 0,
        inlineData: (sb.incompat & INCOMPAT.INLINE_DATA) !== 0,
        compat: sb.compat,
        incompat: sb.incompat,
        roCompat: sb.roCompat,
      },
    };
  }

  /** Open the ext2/3/4 filesystem on `io` (the partition, not the whole disk). */
  static open(io: BlockIO): Ext4Fs {
    return new Ext4Fs(io);
  }

  /** The decoded inode (for callers needing more than stat: flags, block counts). */
  inode(ino: number): Inode {
    return readInode(this.io, this.sb, this.groups, ino);
  }

  // ---- paths ---------------------------------------------------------------------------------------------

  /** Resolve a path to an inode number. Symlinks in the middle are always followed (inside the image: absolute
   *  targets start at this filesystem's root); the last one only when followSymlinks (default true). */
  lookup(path: string, opts: { followSymlinks?: boolean } = {}): number {
    const follow = opts.followSymlinks ?? true;
    const stack: number[] = [ROOT_INO];
    const names: string[] = []; // the path resolved so far, for a symlink loop's message
    const queue = path.split('/').filter((c) => c !== '' && c !== '.');
    let hops = 0;
    while (queue.length) {
      const comp = queue.shift()!;
      if (comp === '..') {
        if (stack.length > 1) {
          stack.pop();
          names.pop();
        }
        continue;
      }
      const dirIno = stack[stack.length - 1];
      const dir = this.inode(dirIno);
      if (dir.type !== 'dir') throw new NotFoundError(`${this.io.name}: ${path}: a path component is not a directory`);
      const entry = this.findEntry(dir, comp);
      if (!entry) throw new NotFoundError(`${this.io.name}: ${path}: no such file or directory (no '${comp}')`);
      const isLast = queue.length === 0;
      const type = entry.type ?? this.inode(entry.ino).type;
      if (type === 'symlink' && (!isLast || follow)) {
        if (++hops > MAX_SYMLINK_HOPS) {
          throw new SymlinkLoopError(`${this.io.name}: symlink loop at /${[...names, comp].join('/')} (resolving ${path}: more than ${MAX_SYMLINK_HOPS} links)`);
        }
        const target = this.readlink(entry.ino);
        const parts = target.split('/').filter((c) => c !== '' && c !== '.');
        if (target.startsWith('/')) {
          stack.splice(1);
          names.length = 0;
        }
        queue.unshift(...parts);
        continue;
      }
      stack.push(entry.ino);
      names.push(comp);
    }
    return stack[stack.length - 1];
  }

  private resolve(pathOrIno: string | number, follow = true): Inode {
    return this.inode(typeof pathOrIno === 'number' ? pathOrIno : this.lookup(pathOrIno, { followSymlinks: follow }));
  }

  private findEntry(dir: Inode, name: string): DirEntry | undefined {
    for (const e of this.dirEntries(dir)) if (e.name === name) return e;
    return undefined;
  }

  stat(pathOrIno: string | number): Ext4Stat {
    return toStat(this.resolve(pathOrIno, true));
  }

  lstat(path: string): Ext4Stat {
    return toStat(this.resolve(path, false));
  }

  // ---- directories ---------------------------------------------------------------------------------------

  private *dirEntries(dir: Inode): Iterable<DirEntry> {
    const opts = {
      inodesCount: this.sb.inodesCount,
      fileType: (this.sb.incompat & INCOMPAT.FILETYPE) !== 0,
      dirIno: dir.ino,
    };
    if (dir.flags & INODE_FLAGS.INLINE_DATA) {
      // Inline directory: 4-byte parent inode, entries in the rest of i_block, more in the system.data xattr.
      const parent = dir.iblock.readUInt32LE(0);
      yield { name: '..', ino: parent, type: 'dir' };
      yield* parseDirBlock(this.io.name, dir.iblock.subarray(4), dir.offset + 0x28 + 4, opts);
      const more = findInodeXattr(dir, 7, 'data');
      if (more && more.length) yield* parseDirBlock(this.io.name, more, dir.offset, opts);
      return;
    }
    const bs = this.sb.blockSize;
    const nblocks = Math.ceil(dir.size / bs);
    for (const run of blockRuns(this.io, this.sb, dir)) {
      if (run.uninit) continue;
      for (let i = 0; i < run.length && run.logical + i < nblocks; i++) {
        const at = (run.physical + i) * bs;
        yield* parseDirBlock(this.io.name, this.io.read(at, bs), this.io.base + at, opts);
      }
    }
  }

  /** Entries of a directory, without `.` and `..`, in on-disk order. */
  readdir(pathOrIno: string | number): { name: string; ino: number; type: FileType }[] {
    const dir = this.resolve(pathOrIno, true);
    if (dir.type !== 'dir') throw new NotFoundError(`${this.io.name}: ${String(pathOrIno)}: not a directory`);
    const out: { name: string; ino: number; type: FileType }[] = [];
    for (const e of this.dirEntries(dir)) {
      if (e.name === '.' || e.name === '..') continue;
      out.push({ name: e.name, ino: e.ino, type: e.type ?? this.inode(e.ino).type });
    }
    return out;
  }

  // ---- contents ------------------------------------------------------------------------------------------

  private *inodeChunks(inode: Inode): Iterable<Buffer> {
    const size = inode.size;
    if (inode.flags & INODE_FLAGS.INLINE_DATA) {
      const extra = findInodeXattr(inode, 7, 'data') ?? Buffer.alloc(0);
      const all = Buffer.concat([inode.iblock, extra]);
      if (all.length < size && size > 60) {
        throw new CorruptImageError(`${this.io.name}: ext4 inode ${inode.ino} inline data is shorter than its size ${size}`, inode.offset);
      }
      if (size) yield all.subarray(0, size);
      return;
    }
    const bs = this.sb.blockSize;
    let pos = 0;
    const zeros = function* (upTo: number): Iterable<Buffer> {
      while (pos < upTo) {
        const n = Math.min(CHUNK, upTo - pos);
        yield Buffer.alloc(n);
        pos += n;
      }
    };
    for (const run of blockRuns(this.io, this.sb, inode)) {
      const runStart = run.logical * bs;
      if (runStart >= size) break;
      if (runStart < pos) {
        throw new CorruptImageError(`${this.io.name}: ext4 inode ${inode.ino} has overlapping or unordered extents`, inode.offset);
      }
      yield* zeros(runStart);
      const runEnd = Math.min(size, runStart + run.length * bs);
      if (run.uninit) {
        yield* zeros(runEnd);
        continue;
      }
      while (pos < runEnd) {
        const n = Math.min(CHUNK, runEnd - pos);
        yield this.io.read(run.physical * bs + (pos - runStart), n);
        pos += n;
      }
    }
    yield* zeros(size);
  }

  /** Stream a file's bytes in chunks of up to 1 MiB; sparse holes and unwritten extents come back as zeros. */
  readChunks(pathOrIno: string | number): Iterable<Buffer> {
    const inode = this.resolve(pathOrIno, true);
    if (inode.type === 'dir') throw new NotFoundError(`${this.io.name}: ${String(pathOrIno)}: is a directory`);
    return this.inodeChunks(inode);
  }

  /** A whole (small) file in memory. */
  readFile(pathOrIno: string | number): Buffer {
    return Buffer.concat([...this.readChunks(pathOrIno)]);
  }

  /** The target of a symlink: fast ones live in i_block, slow ones in a data block (or inline data). */
  readlink(pathOrIno: string | number): string {
    const inode = this.resolve(pathOrIno, false);
    if (inode.type !== 'symlink') throw new NotFoundError(`${this.io.name}: ${String(pathOrIno)}: not a symbolic link`);
    const aclBlocks = inode.fileAcl ? this.sb.blockSize / 512 : 0;
    const fast = !(inode.flags & INODE_FLAGS.INLINE_DATA) && inode.size < 60 && inode.blocks - aclBlocks === 0;
    if (fast) return inode.iblock.subarray(0, inode.size).toString('utf8');
    return Buffer.concat([...this.inodeChunks(inode)]).toString('utf8');
  }

  // ---- whole tree ----------------------------------------------------------------------------------------

  /** Depth-first walk (names sorted bytewise within each directory), starting with `root` itself. Stats do not
   *  follow symlinks. Paths are absolute ('/etc/fstab'). */
  *walk(root = '/'): Iterable<{ path: string; stat: Ext4Stat }> {
    const rootIno = this.lookup(root);
    const rootPath = '/' + root.split('/').filter(Boolean).join('/');
    const rootStat = toStat(this.inode(rootIno));
    yield { path: rootPath, stat: rootStat };
    if (rootStat.type !== 'dir') return;
    const sorted = (ino: number): Array<{ name: string; ino: number }> =>
      this.readdir(ino).sort((x, y) => Buffer.compare(Buffer.from(x.name), Buffer.from(y.name)));
    const walk = walkTree<{ name: string; ino: number }, Ext4Stat>(
      { path: rootPath, key: rootIno, children: sorted(rootIno) },
      (e) => e.name,
      (e) => {
        const st = toStat(this.inode(e.ino));
        return { value: st, dir: st.type === 'dir' ? { key: e.ino, children: () => sorted(e.ino) } : undefined };
      },
      (path, ino) => new CorruptImageError(`${this.io.name}: ext4 directory ${path} (inode ${ino}) appears twice: directory loop`),
    );
    for (const { path, value } of walk) yield { path, stat: value };
  }

  // ---- space ---------------------------------------------------------------------------------------------

  /** Byte ranges the block bitmaps mark used (merged, ascending), for sparse copies and block maps. */
  usedRanges(): ByteRange[] {
    const bs = this.sb.blockSize;
    return [...usedBlockRuns(this.io, this.sb, this.groups)].map(([s, n]) => ({ start: s * bs, length: n * bs }));
  }

  /**
   * The same blocks, ascending, each block bitmap read only when its group is reached and runs cut at group ends:
   * a reader of a file still being written (GrowingFileIO) can copy the first groups before later bitmaps exist.
   */
  *usedRangesLazily(): Iterable<ByteRange> {
    const bs = this.sb.blockSize;
    for (const [s, n] of usedBlockRuns(this.io, this.sb, this.groups, { perGroup: true })) yield { start: s * bs, length: n * bs };
  }

  usedBytes(): number {
    let t = 0;
    for (const r of this.usedRanges()) t += r.length;
    return t;
  }
}
