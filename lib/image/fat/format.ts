// formatFat32: write a fresh, empty FAT32 file system onto a BlockIO (a partition window), like mkfs.vfat -F 32:
// boot sector + backup, FSInfo + backup, two FATs, a root directory cluster with the volume label.
import { InputError } from '../../errors.ts';
import type { BlockIO } from '../io.ts';
import { SECTOR } from '../mbr.ts';
import { ATTR_VOLUME, makeShortEntry } from './dirent.ts';
import { encodeBootSector, FSINFO, FSINFO_SIGS } from './bpb.ts';

export interface FormatFat32Options {
  /** Volume label, at most 11 characters (e.g. 'system-boot'). */
  label: string;
  /** Bytes per cluster (512 .. 32768, power of two); default by volume size like mkfs.vfat. */
  clusterSize?: number;
  /** Source of the timestamp of the label entry and of the volume id (default: now). */
  clock?: () => Date;
  /** Sectors before the volume on the disk (BPB hidden sectors, the partition start LBA). */
  hiddenSectors?: number;
}

const RESERVED = 32;

export function formatFat32(io: BlockIO, opts: FormatFat32Options): void {
  const label = opts.label;
  if (label.length > 11 || /[\x00-\x1f"*+,./:;<=>?[\\\]|\x7f-\uffff]/.test(label)) {
    throw new InputError(`FAT label '${label}' is invalid`, 'use at most 11 ASCII letters, digits, spaces, - or _');
  }
  const when = (opts.clock ?? (() => new Date()))();
  const total = Math.floor(io.size / SECTOR);
  // Like mkfs.vfat / Microsoft's table: 512-byte clusters up to 260 MiB, then 4K, 8K, 16K, 32K.
  const cs =
    opts.clusterSize ??
    (io.size <= 260 * 2 ** 20 ? 512 : io.size <= 8 * 2 ** 30 ? 4096 : io.size <= 16 * 2 ** 30 ? 8192 : io.size <= 32 * 2 ** 30 ? 16384 : 32768);
  if (cs < SECTOR || cs > 32768 || (cs & (cs - 1)) !== 0) throw new InputError(`FAT32 cluster size ${cs} is invalid`, 'use a power of two from 512 to 32768');
  const spc = cs / SECTOR;
  // Grow the FAT until it covers every cluster that is left after it (monotone, so this settles).
  let fatSectors = 1;
  let clusters = 0;
  for (;;) {
    clusters = Math.floor((total - RESERVED - 2 * fatSectors) / spc);
    const need = Math.ceil(((clusters + 2) * 4) / SECTOR);
    if (need <= fatSectors) break;
    fatSectors = need;
  }
  if (clusters < 65525) {
    throw new InputError(
      `${io.name}: ${io.size} bytes with ${cs}-byte clusters gives ${clusters} clusters, too few for FAT32 (need 65525)`,
      'use a smaller cluster size or a bigger partition',
    );
  }
  if (clusters > 0x0ffffff5) throw new InputError(`${io.name}: too many clusters for FAT32; use a bigger cluster size`);

  const bs = encodeBootSector({
    kind: 'fat32',
    jump: Buffer.from([0xeb, 0x58, 0x90]),
    oemName: Buffer.from('MSWIN4.1', 'latin1'),
    bytesPerSector: SECTOR,
    sectorsPerCluster: spc,
    reservedSectors: RESERVED,
    numFats: 2,
    rootEntries: 0,
    totalSectors16: 0,
    media: 0xf8,
    fatSectors16: 0,
    sectorsPerTrack: 32,
    heads: 64,
    hiddenSectors: opts.hiddenSectors ?? 0,
    totalSectors32: total,
    fatSectors32: fatSectors,
    extFlags: 0,
    fsVersion: 0,
    rootCluster: 2,
    fsInfoSector: 1,
    backupBootSector: 6,
    reserved: Buffer.alloc(12),
    driveNumber: 0x80,
    reserved1: 0,
    bootSignature: 0x29,
    volumeId: Math.floor(when.getTime() / 1000) >>> 0, // from the clock: reproducible
    volumeLabel: Buffer.from((label || 'NO NAME').padEnd(11, ' '), 'latin1'),
    fsType: Buffer.from('FAT32   ', 'latin1'),
    bootCode: Buffer.alloc(420),
    signature: 0xaa55,
  });

  const fsi = FSINFO.encode({
    ...FSINFO_SIGS,
    reserved1: Buffer.alloc(480),
    freeCount: clusters - 1, // all free but the root directory's cluster
    nextFree: 2, // last allocated
    reserved2: Buffer.alloc(12),
  });

  // Reserved area: boot, FSInfo, (sector 2 has the signature too in Microsoft's layout), backups at 6 and 7.
  const reserved = Buffer.alloc(RESERVED * SECTOR);
  bs.copy(reserved, 0);
  fsi.copy(reserved, SECTOR);
  bs.copy(reserved, 6 * SECTOR);
  fsi.copy(reserved, 7 * SECTOR);
  io.write(0, reserved);

  const fatBytes = fatSectors * SECTOR;
  const zero = Buffer.alloc(1 << 20);
  for (let f = 0; f < 2; f++) {
    const base = RESERVED * SECTOR + f * fatBytes;
    for (let off = 0; off < fatBytes; off += zero.length) io.write(base + off, zero.subarray(0, Math.min(zero.length, fatBytes - off)));
    const head = Buffer.alloc(12);
    head.writeUInt32LE(0x0ffffff8, 0);
    head.writeUInt32LE(0x0fffffff, 4);
    head.writeUInt32LE(0x0fffffff, 8); // root directory: one cluster, end of chain
    io.write(base, head);
  }
  const root = Buffer.alloc(cs);
  if (label) makeShortEntry(Buffer.from(label.padEnd(11, ' '), 'latin1'), 0, ATTR_VOLUME, 0, 0, when).copy(root, 0);
  io.write((RESERVED + 2 * fatSectors) * SECTOR, root);
}
