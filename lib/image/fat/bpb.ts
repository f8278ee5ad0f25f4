// FAT boot sector / BIOS Parameter Block: a pure codec of the 512 bytes (FAT32 and FAT12/16 layouts), the checks,
// and the volume geometry derived from it (FAT type, where the FATs, the root directory and the data clusters are).
// Invariants: decode/encode/fatGeometry/isFat do no I/O; parseBootSector reads one sector; errors carry image
// offsets (the BlockIO's base is added).
import { CorruptImageError } from '../../errors.ts';
import type { BlockIO } from '../io.ts';
import { layout } from '../layout.ts';

export interface FatGeometry {
  fatType: 12 | 16 | 32;
  bytesPerSector: number;
  sectorsPerCluster: number;
  clusterSize: number;
  reservedSectors: number;
  numFats: number;
  /** Sectors per FAT. */
  fatSectors: number;
  /** Byte offset of FAT number 0. */
  fatOffset: number;
  /** Byte length of one FAT. */
  fatBytes: number;
  /** FAT copies that are written (all of them unless FAT32 mirroring is disabled). */
  activeFats: number[];
  /** FAT used for reading. */
  readFat: number;
  /** FAT12/16: byte offset and length of the fixed root directory region. */
  rootDirOffset: number;
  rootDirBytes: number;
  /** FAT32: first cluster of the root directory. */
  rootCluster: number;
  /** Byte offset of data cluster 2. */
  dataOffset: number;
  totalSectors: number;
  /** Number of data clusters; valid cluster numbers are 2 .. clusterCount+1. */
  clusterCount: number;
  /** FAT32: sector of the FSInfo structure (0 when absent). */
  fsInfoSector: number;
  /** Label from the boot sector (trimmed). */
  bpbLabel: string;
}

const POW2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** Bytes 0..35: jump, OEM name and the BIOS Parameter Block every FAT shares. */
const COMMON = {
  jump: [0, 'bytes', 3],
  oemName: [3, 'bytes', 8],
  bytesPerSector: [11, 'u16'],
  sectorsPerCluster: [13, 'u8'],
  reservedSectors: [14, 'u16'],
  numFats: [16, 'u8'],
  rootEntries: [17, 'u16'],
  totalSectors16: [19, 'u16'],
  media: [21, 'u8'],
  fatSectors16: [22, 'u16'],
  sectorsPerTrack: [24, 'u16'],
  heads: [26, 'u16'],
  hiddenSectors: [28, 'u32'],
  totalSectors32: [32, 'u32'],
} as const;

/** A FAT32 boot sector: the common BPB, then the FAT32 extension (FAT size, root cluster, FSInfo, label). */
export const FAT32_BOOT = layout('FAT32 boot sector', 512, {
  ...COMMON,
  fatSectors32: [36, 'u32'],
  extFlags: [40, 'u16'],
  fsVersion: [42, 'u16'],
  rootCluster: [44, 'u32'],
  fsInfoSector: [48, 'u16'],
  backupBootSector: [50, 'u16'],
  reserved: [52, 'bytes', 12],
  driveNumber: [64, 'u8'],
  reserved1: [65, 'u8'],
  bootSignature: [66, 'u8'],
  volumeId: [67, 'u32'],
  volumeLabel: [71, 'bytes', 11],
  fsType: [82, 'bytes', 8],
  bootCode: [90, 'bytes', 420],
  signature: [510, 'u16'],
});

/** A FAT12/16 boot sector: the common BPB, then the short extension (label at 43). */
export const FAT16_BOOT = layout('FAT12/16 boot sector', 512, {
  ...COMMON,
  driveNumber: [36, 'u8'],
  reserved1: [37, 'u8'],
  bootSignature: [38, 'u8'],
  volumeId: [39, 'u32'],
  volumeLabel: [43, 'bytes', 11],
  fsType: [54, 'bytes', 8],
  bootCode: [62, 'bytes', 448],
  signature: [510, 'u16'],
});

/** The FAT32 FSInfo sector: free cluster count and next-free hint, between three signatures. */
export const FSINFO = layout('FAT32 FSInfo', 512, {
  leadSig: [0, 'u32'],
  reserved1: [4, 'bytes', 480],
  structSig: [484, 'u32'],
  freeCount: [488, 'u32'],
  nextFree: [492, 'u32'],
  reserved2: [496, 'bytes', 12],
  trailSig: [508, 'u32'],
});
export type FsInfo = ReturnType<typeof FSINFO.decode>;
export const FSINFO_SIGS = { leadSig: 0x41615252, structSig: 0x61417272, trailSig: 0xaa550000 } as const;

/** Do the three signatures of an FSInfo sector hold? */
export function fsInfoValid(f: FsInfo): boolean {
  return f.leadSig === FSINFO_SIGS.leadSig && f.structSig === FSINFO_SIGS.structSig && f.trailSig === FSINFO_SIGS.trailSig;
}

export type BootSector =
  | ({ kind: 'fat32' } & ReturnType<typeof FAT32_BOOT.decode>)
  | ({ kind: 'fat16' } & ReturnType<typeof FAT16_BOOT.decode>);

/** Decode a boot sector (pure, every byte, no checks): the FAT32 layout when the 16-bit FAT size is 0. */
export function decodeBootSector(buf: Buffer, at = 0): BootSector {
  const fat32 = buf.readUInt16LE(at + 22) === 0;
  return fat32 ? { kind: 'fat32', ...FAT32_BOOT.decode(buf, at) } : { kind: 'fat16', ...FAT16_BOOT.decode(buf, at) };
}

/** Encode a boot sector (512 bytes); the inverse of decodeBootSector. */
export function encodeBootSector(bs: BootSector): Buffer {
  const { kind, ...fields } = bs;
  return kind === 'fat32' ? FAT32_BOOT.encode(fields as ReturnType<typeof FAT32_BOOT.decode>) : FAT16_BOOT.encode(fields as ReturnType<typeof FAT16_BOOT.decode>);
}

/** A quick probe: do these bytes (at least the first 512 of a volume) start like a FAT boot sector? Jump
 *  instruction, power-of-two sector and cluster sizes, reserved sectors, 1-2 FATs, 0x55AA. No I/O. */
export function isFat(buf: Uint8Array): boolean {
  if (buf.length < 512) return false;
  const b = Buffer.from(buf.buffer, buf.byteOffset, 512);
  if (!(b[0] === 0xeb || b[0] === 0xe9)) return false;
  if (b[510] !== 0x55 || b[511] !== 0xaa) return false;
  const bps = b.readUInt16LE(11);
  const fats = b[16];
  return [512, 1024, 2048, 4096].includes(bps) && POW2(b[13]) && b.readUInt16LE(14) > 0 && (fats === 1 || fats === 2);
}

/**
 * Check a decoded boot sector against a volume of `volumeSize` bytes and derive its geometry (pure). `at` is the
 * image offset of the boot sector: errors name image offsets.
 */
export function fatGeometry(bs: BootSector, ctx: { name: string; volumeSize: number; at: number }): FatGeometry {
  const bad = (what: string, off: number): never => {
    throw new CorruptImageError(`${ctx.name}: not a FAT file system: ${what}`, ctx.at + off, 'is this the right partition?');
  };
  if (bs.signature !== 0xaa55) bad('boot sector signature is not 55 AA', 510);
  const { bytesPerSector, sectorsPerCluster, reservedSectors, numFats, rootEntries } = bs;
  if (!POW2(bytesPerSector) || bytesPerSector < 512 || bytesPerSector > 4096) bad(`bytes per sector ${bytesPerSector}`, 11);
  if (!POW2(sectorsPerCluster)) bad(`sectors per cluster ${sectorsPerCluster}`, 13);
  if (reservedSectors < 1) bad('reserved sector count 0', 14);
  if (numFats < 1 || numFats > 4) bad(`number of FATs ${numFats}`, 16);
  const totalSectors = bs.totalSectors16 || bs.totalSectors32;
  if (totalSectors === 0) bad('total sector count 0', 19);
  const fatSectors = bs.kind === 'fat32' ? bs.fatSectors32 : bs.fatSectors16;
  if (fatSectors === 0) bad('sectors per FAT 0', 22);
  const rootDirSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const firstDataSector = reservedSectors + numFats * fatSectors + rootDirSectors;
  if (firstDataSector >= totalSectors) bad('FATs and root directory do not fit in the volume', 14);
  const clusterCount = Math.floor((totalSectors - firstDataSector) / sectorsPerCluster);
  const fatType: 12 | 16 | 32 = clusterCount < 4085 ? 12 : clusterCount < 65525 ? 16 : 32;
  if (fatType === 32 && rootEntries !== 0) bad('FAT32 volume with a fixed root directory', 17);
  if (fatType !== 32 && rootEntries === 0) bad('FAT12/16 volume without root directory entries', 17);
  if ((fatType === 32) !== (bs.kind === 'fat32')) bad(`${clusterCount} clusters (FAT${fatType}) but a ${bs.kind === 'fat32' ? '32' : '16'}-bit FAT size field`, 22);
  const clusterSize = bytesPerSector * sectorsPerCluster;
  const fatBytes = fatSectors * bytesPerSector;
  const needFatBytes = Math.ceil(((clusterCount + 2) * fatType) / 8);
  if (fatBytes < needFatBytes) bad(`FAT of ${fatBytes} bytes is too small for ${clusterCount} clusters`, 22);
  if (totalSectors * bytesPerSector > ctx.volumeSize) {
    throw new CorruptImageError(
      `${ctx.name}: FAT volume claims ${totalSectors * bytesPerSector} bytes but the partition has ${ctx.volumeSize}`,
      ctx.at + 32,
      'the image or partition is truncated',
    );
  }
  let activeFats = Array.from({ length: numFats }, (_, i) => i);
  let readFat = 0;
  let rootCluster = 0;
  let fsInfoSector = 0;
  if (bs.kind === 'fat32') {
    if (bs.extFlags & 0x80) {
      readFat = bs.extFlags & 0x0f;
      if (readFat >= numFats) bad(`active FAT ${readFat} of ${numFats}`, 40);
      activeFats = [readFat];
    }
    rootCluster = bs.rootCluster & 0x0fffffff;
    if (rootCluster < 2 || rootCluster > clusterCount + 1) bad(`root directory cluster ${rootCluster} out of range`, 44);
    fsInfoSector = bs.fsInfoSector;
    if (fsInfoSector === 0xffff || fsInfoSector >= reservedSectors) fsInfoSector = 0;
  }
  const bpbLabel = bs.bootSignature === 0x29 ? bs.volumeLabel.toString('latin1').replace(/ +$/, '') : '';
  return {
    fatType,
    bytesPerSector,
    sectorsPerCluster,
    clusterSize,
    reservedSectors,
    numFats,
    fatSectors,
    fatOffset: reservedSectors * bytesPerSector,
    fatBytes,
    activeFats,
    readFat,
    rootDirOffset: (reservedSectors + numFats * fatSectors) * bytesPerSector,
    rootDirBytes: rootEntries * 32,
    rootCluster,
    dataOffset: firstDataSector * bytesPerSector,
    totalSectors,
    clusterCount,
    fsInfoSector,
    bpbLabel,
  };
}

/** Read the boot sector at offset 0 of `io` and check it (fatGeometry); errors name image offsets. */
export function parseBootSector(io: BlockIO): FatGeometry {
  if (io.size < 512) throw new CorruptImageError(`${io.name}: too small for a FAT boot sector (${io.size} bytes)`, io.base);
  return fatGeometry(decodeBootSector(io.read(0, 512)), { name: io.name, volumeSize: io.size, at: io.base });
}
