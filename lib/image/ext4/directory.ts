// Directory blocks: linear ext2-style entries. Hashed (htree) directories are read the same way: their index
// blocks look like one empty entry spanning the block, and the checksum tail is an entry with inode 0.
import type { BlockIO } from '../io.ts';
import { CorruptImageError } from '../../errors.ts';
import type { FileType } from './inode.ts';

export interface DirEntry {
  name: string;
  ino: number;
  /** From the entry's file_type byte; undefined on filesystems without the filetype feature. */
  type?: FileType;
}

const FT: Array<FileType | undefined> = [undefined, 'file', 'dir', 'chardev', 'blockdev', 'fifo', 'socket', 'symlink'];

/**
 * Parse the entries of one directory block (or inline directory area). `where` is the byte offset of `buf`
 * inside the filesystem for error messages; `. ` and `..` are returned too (callers filter).
 */
export function parseDirBlock(
  io: BlockIO, buf: Buffer, where: number, opts: { inodesCount: number; fileType: boolean; dirIno: number },
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
        `${io.name}: ext4 directory inode ${opts.dirIno} has a damaged entry (rec_len ${recLen}, name_len ${nameLen}, ` +
          `${buf.length - p} bytes left in the block)`,
        where + p,
        'Run e2fsck on the image, or use a fresh copy of it.',
      );
    }
    if (ino !== 0) {
      if (ino > opts.inodesCount) {
        throw new CorruptImageError(
          `${io.name}: ext4 directory inode ${opts.dirIno} has an entry pointing to inode ${ino}, beyond the inode count ${opts.inodesCount}`,
          where + p,
          'Run e2fsck on the image, or use a fresh copy of it.',
        );
      }
      const name = buf.subarray(p + 8, p + 8 + nameLen).toString('utf8');
      out.push({ name, ino, type: opts.fileType ? FT[buf[p + 7]] : undefined });
    }
    p += recLen;
  }
  return out;
}
