// Directory blocks: linear ext2-style entries. Hashed (htree) directories are read the same way: their index
// blocks look like one empty entry spanning the block, and the checksum tail is an entry with inode 0.
import { CorruptImageError } from '../../errors.ts';
import type { FileType } from './inode.ts';
import { layout } from '../layout.ts';

export interface DirEntry {
  name: string;
  ino: number;
  /** From the entry's file_type byte; undefined on filesystems without the filetype feature. */
  type?: FileType;
}

const FT: Array<FileType | undefined> = [undefined, 'file', 'dir', 'chardev', 'blockdev', 'fifo', 'socket', 'symlink'];

/** The 8-byte head of a linear directory entry (ext4_dir_entry_2); the name follows, rec_len covers both. */
export const DIR_ENTRY_HEAD = layout('ext4 directory entry', 8, {
  inode: [0, 'u32'],
  recLen: [4, 'u16'],
  nameLen: [6, 'u8'],
  fileType: [7, 'u8'],
});

/** One raw directory entry: its head and name bytes (pure); the padding up to rec_len is not kept. */
export interface RawDirEntry {
  inode: number;
  recLen: number;
  nameLen: number;
  fileType: number;
  name: Buffer;
}

/** Decode the entry at `at` in `buf` (no checks: parseDirBlock checks). */
export function decodeDirEntry(buf: Buffer, at = 0): RawDirEntry {
  const h = DIR_ENTRY_HEAD.decode(buf, at);
  return { ...h, name: Buffer.from(buf.subarray(at + 8, at + 8 + h.nameLen)) };
}

/** Encode an entry into `recLen` bytes (head, name, zero padding). */
export function encodeDirEntry(e: RawDirEntry): Buffer {
  const out = Buffer.alloc(e.recLen);
  DIR_ENTRY_HEAD.encode({ inode: e.inode, recLen: e.recLen, nameLen: e.nameLen, fileType: e.fileType }, out);
  e.name.copy(out, 8);
  return out;
}

/**
 * Parse the entries of one directory block (or inline directory area), pure. `where` is the image offset of
 * `buf` for error messages, `name` the volume's; `.` and `..` are returned too (callers filter).
 */
export function parseDirBlock(
  name: string, buf: Buffer, where: number, opts: { inodesCount: number; fileType: boolean; dirIno: number },
): DirEntry[] {
  const out: DirEntry[] = [];
  let p = 0;
  while (p + 8 <= buf.length) {
    const ino = buf.readUInt32LE(p);
    let recLen = buf.readUInt16LE(p + 4);
    if (buf.length >= 65536 && (recLen === 0 || recLen === 65535)) recLen = 65536;
    const nameLen = opts.fileType ? buf[p + 6] : buf.readUInt16LE(p + 6);
    if (recLen < 8 || recLen % 4 !== 0 || p + recLen > buf.length || (ino !== 0 && 8 + nameLen > recLen)) {
      throw new CorruptImageError(
        `${name}: ext4 directory inode ${opts.dirIno} has a damaged entry (rec_len ${recLen}, name_len ${nameLen}, ` +
          `${buf.length - p} bytes left in the block)`,
        where + p,
        'Run e2fsck on the image, or use a fresh copy of it.',
      );
    }
    if (ino !== 0) {
      if (ino > opts.inodesCount) {
        throw new CorruptImageError(
          `${name}: ext4 directory inode ${opts.dirIno} has an entry pointing to inode ${ino}, beyond the inode count ${opts.inodesCount}`,
          where + p,
          'Run e2fsck on the image, or use a fresh copy of it.',
        );
      }
      out.push({ name: buf.subarray(p + 8, p + 8 + nameLen).toString('utf8'), ino, type: opts.fileType ? FT[buf[p + 7]] : undefined });
    }
    p += recLen;
  }
  return out;
}
