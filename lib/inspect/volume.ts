// A uniform read-only view over the FAT and ext4 engines for inspect / ls / cat: open partition N of an image,
// list a directory, stat, read text, stream a file.
import type { BlockIO } from '../image/io.ts';
import { readTable, partitionIO, type PartitionTable, type Partition } from '../image/partition-table.ts';
import { FAT_MBR_TYPES } from '../image/mbr.ts';
import { FatFs } from '../image/fat/index.ts';
import { Ext4Fs } from '../image/ext4/index.ts';
import { CorruptImageError, InputError, NotFoundError } from '../errors.ts';
import { detectFs, partitionTypeName } from './detect.ts';

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface ListEntry {
  name: string;
  type: EntryType;
  size: number;
  mtime: string;
  /** Unix mode (ext4 only; FAT gives 0644/0755-like values derived from the read-only attribute). */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Symlink target (ext4). */
  target?: string;
}

/** An opened filesystem of either kind, behind one small interface. */
export interface Volume {
  kind: 'vfat' | 'ext4';
  partition: Partition;
  name: string;
  label: string;
  /** Bytes the filesystem can hold (data area for FAT, all blocks for ext4). */
  totalBytes: number;
  usedBytes: number;
  exists(path: string): boolean;
  isFile(path: string): boolean;
  list(path: string): ListEntry[];
  stat(path: string): ListEntry;
  /** Whole small file (callers check size first). */
  readFile(path: string): Buffer;
  readChunks(path: string): Iterable<Buffer>;
  fat?: FatFs;
  ext4?: Ext4Fs;
}

/** MBR types that claim a FAT file system (lib/image/mbr.ts). */
export const FAT_TYPES = FAT_MBR_TYPES;

const EXT4_TYPES: Record<string, EntryType> = { file: 'file', dir: 'dir', symlink: 'symlink' };

function fatVolume(fs: FatFs, p: Partition, name: string): Volume {
  const entry = (path: string): ListEntry => {
    const e = fs.stat(path);
    return {
      name: e.name || '/',
      type: e.isDirectory ? 'dir' : 'file',
      size: e.size,
      mtime: e.mtime.toISOString(),
      mode: e.isDirectory ? 0o40755 : (e.attributes & 1 ? 0o100444 : 0o100644),
    };
  };
  return {
    kind: 'vfat',
    partition: p,
    name,
    label: fs.label(),
    totalBytes: fs.totalBytes(),
    usedBytes: fs.totalBytes() - fs.freeBytes(),
    exists: (path) => fs.exists(path),
    isFile: (path) => fs.exists(path) && !fs.stat(path).isDirectory,
    list: (path) => {
      const st = entry(path);
      if (st.type !== 'dir') return [{ ...st, name: path.split('/').filter(Boolean).pop() ?? path }];
      return fs.readdir(path).filter((e) => e.name !== '.' && e.name !== '..').map((e) => ({
        name: e.name,
        type: e.isDirectory ? 'dir' : 'file',
        size: e.size,
        mtime: e.mtime.toISOString(),
        mode: e.isDirectory ? 0o40755 : (e.attributes & 1 ? 0o100444 : 0o100644),
      }));
    },
    stat: entry,
    readFile: (path) => fs.readFile(path),
    readChunks: (path) => fs.readFileChunks(path),
    fat: fs,
  };
}

function ext4Volume(fs: Ext4Fs, p: Partition, name: string): Volume {
  const toEntry = (entryName: string, path: string): ListEntry => {
    const st = fs.lstat(path);
    const e: ListEntry = {
      name: entryName,
      type: EXT4_TYPES[st.type] ?? 'other',
      size: st.size,
      mtime: st.mtime.toISOString(),
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
    };
    if (st.type === 'symlink') e.target = fs.readlink(path);
    return e;
  };
  const join = (dir: string, n: string) => (dir.endsWith('/') ? dir + n : `${dir}/${n}`);
  return {
    kind: 'ext4',
    partition: p,
    name,
    label: fs.info.label,
    totalBytes: fs.info.blocksCount * fs.info.blockSize,
    usedBytes: fs.usedBytes(),
    exists: (path) => {
      try {
        fs.lookup(path);
        return true;
      } catch (e) {
        if (e instanceof NotFoundError) return false;
        throw e;
      }
    },
    isFile: (path) => {
      try {
        return fs.stat(path).type === 'file';
      } catch (e) {
        if (e instanceof NotFoundError) return false;
        throw e;
      }
    },
    list: (path) => {
      const st = fs.stat(path);
      if (st.type !== 'dir') return [toEntry(path.split('/').filter(Boolean).pop() ?? path, path)];
      return fs
        .readdir(path)
        .filter((e) => e.name !== '.' && e.name !== '..')
        .map((e) => toEntry(e.name, join(path, e.name)));
    },
    stat: (path) => toEntry(path.split('/').filter(Boolean).pop() ?? '/', path),
    readFile: (path) => fs.readFile(path),
    readChunks: (path) => fs.readChunks(path),
    ext4: fs,
  };
}

/** Open the filesystem in partition `p` of `disk`, detected by content. Throws a typed error when it is neither. */
export function openVolume(disk: BlockIO, p: Partition): Volume {
  const io = partitionIO(disk, p);
  const name = `${disk.name} partition ${p.index}`;
  const kind = detectFs(io);
  // A partition whose type says FAT gets the FAT reader even when the boot sector is damaged: it names the fault.
  if (kind === 'vfat' || (kind === 'unknown' && FAT_TYPES.has(p.type))) return fatVolume(FatFs.open(io), p, name);
  if (kind === 'ext4' || p.type === 0x83) return ext4Volume(Ext4Fs.open(io), p, name); // a Linux partition: let ext4 name the fault
  throw new CorruptImageError(
    `${name} (type ${p.typeGuid ?? `0x${p.type.toString(16).padStart(2, '0')}`} ${partitionTypeName(p)}): no FAT or ext4 filesystem found`,
    disk.base + p.start,
  );
}

/** Partition `n` (1-based) of a disk, with a clear error when it does not exist. */
export function partitionByNumber(disk: BlockIO, table: PartitionTable, n: number): Partition {
  const p = table.partitions.find((x) => x.index === n);
  if (!p) {
    const have = table.partitions.map((x) => x.index).join(', ') || 'none';
    throw new InputError(`${disk.name}: no partition ${n} (partitions: ${have})`, 'Partitions are numbered from 1, as in /dev/sdX1.');
  }
  if (p.extended) throw new InputError(`${disk.name}: partition ${n} is an extended partition; logical partitions are not supported`);
  return p;
}

/** Open partition `n` of a disk. */
export function openPartition(disk: BlockIO, n: number): Volume {
  return openVolume(disk, partitionByNumber(disk, readTable(disk), n));
}

/** Read a small text file, or undefined when missing or larger than `max` bytes. */
export function readSmallText(v: Volume, path: string, max = 1 << 20): string | undefined {
  if (!v.isFile(path)) return undefined;
  const size = v.ext4 ? v.ext4.stat(path).size : v.stat(path).size; // ext4: the target's size, not the link's
  if (size > max) return undefined;
  return v.readFile(path).toString('utf8');
}
