// FAT boot sector / BIOS Parameter Block: parse and validate, and derive the volume geometry (FAT type,
// where the FATs, the root directory and the data clusters are).
import { CorruptImageError } from '../../errors.ts';
import type { BlockIO } from '../io.ts';
import { imageOffset } from './errors.ts';

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

/** Parse the boot sector at offset 0 of `io`; throws CorruptImageError naming the field and its byte offset. */
export function parseBootSector(io: BlockIO): FatGeometry {
  if (io.size < 512) throw new CorruptImageError(`${io.name}: too small for a FAT boot sector (${io.size} bytes)`, imageOffset(io, 0));
  const b = io.read(0, 512);
  const bad = (what: string, off: number): never => {
    throw new CorruptImageError(`${io.name}: not a FAT file system: ${what}`, imageOffset(io, off), 'is this the right partition?');
  };
  if (b[510] !== 0x55 || b[511] !== 0xaa) bad('boot sector signature is not 55 AA', 510);
  const bytesPerSector = b.readUInt16LE(11);
  if (!POW2(bytesPerSector) || bytesPerSector < 512 || bytesPerSector > 4096) bad(`bytes per sector ${bytesPerSector}`, 11);
  const sectorsPerCluster = b[13];
  if (!POW2(sectorsPerCluster)) bad(`sectors per cluster ${sectorsPerCluster}`, 13);
  const reservedSectors = b.readUInt16LE(14);
  if (reservedSectors < 1) bad('reserved sector count 0', 14);
  const numFats = b[16];
  if (numFats < 1 || numFats > 4) bad(`number of FATs ${numFats}`, 16);
  const rootEntries = b.readUInt16LE(17);
  const totalSectors = b.readUInt16LE(19) || b.readUInt32LE(32);
  if (totalSectors === 0) bad('total sector count 0', 19);
  const fatSectors = b.readUInt16LE(22) || b.readUInt32LE(36);
  if (fatSectors === 0) bad('sectors per FAT 0', 22);
  const rootDirSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const firstDataSector = reservedSectors + numFats * fatSectors + rootDirSectors;
  if (firstDataSector >= totalSectors) bad('FATs and root directory do not fit in the volume', 14);
  const clusterCount = Math.floor((totalSectors - firstDataSector) / sectorsPerCluster);
  const fatType: 12 | 16 | 32 = clusterCount < 4085 ? 12 : clusterCount < 65525 ? 16 : 32;
  if (fatType === 32 && rootEntries !== 0) bad('FAT32 volume with a fixed root directory', 17);
  if (fatType !== 32 && rootEntries === 0) bad('FAT12/16 volume without root directory entries', 17);
  const clusterSize = bytesPerSector * sectorsPerCluster;
  const fatBytes = fatSectors * bytesPerSector;
  const needFatBytes = Math.ceil(((clusterCount + 2) * fatType) / 8);
  if (fatBytes < needFatBytes) bad(`FAT of ${fatBytes} bytes is too small for ${clusterCount} clusters`, 22);
  if (totalSectors * bytesPerSector > io.size) {
    throw new CorruptImageError(
      `${io.name}: FAT volume claims ${totalSectors * bytesPerSector} bytes but the partition has ${io.size}`,
      imageOffset(io, 32),
      'the image or partition is truncated',
    );
  }
  let activeFats = Array.from({ length: numFats }, (_, i) => i);
  let readFat = 0;
  let rootCluster = 0;
  let fsInfoSector = 0;
  let labelOff = 43;
  if (fatType === 32) {
    const extFlags = b.readUInt16LE(40);
    if (extFlags & 0x80) {
      readFat = extFlags & 0x0f;
      if (readFat >= numFats) bad(`active FAT ${readFat} of ${numFats}`, 40);
      activeFats = [readFat];
    }
    rootCluster = b.readUInt32LE(44) & 0x0fffffff;
    if (rootCluster < 2 || rootCluster > clusterCount + 1) bad(`root directory cluster ${rootCluster} out of range`, 44);
    fsInfoSector = b.readUInt16LE(48);
    if (fsInfoSector === 0xffff || fsInfoSector >= reservedSectors) fsInfoSector = 0;
    labelOff = 71;
  }
  const sig = b[labelOff - 5];
  const bpbLabel = sig === 0x29 ? b.toString('latin1', labelOff, labelOff + 11).replace(/ +$/, '') : '';
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
