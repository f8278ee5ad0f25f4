// GUID Partition Table reading (header at LBA 1 and its entry array), enough to recognise a GPT disk and say what
// is on it. pi-image builds MBR disks; GPT support is read-only and exists so we can give a clear error.
import { crc32 } from 'node:zlib';
import type { BlockIO } from './io.ts';
import { PiImageError, CorruptImageError } from '../errors.ts';

/** The disk uses a GUID Partition Table (its MBR holds only a protective 0xEE entry). */
export class GptDiskError extends PiImageError {
  constructor(name: string) {
    super('GPT', `${name}: GPT disk: pi-image expects MBR`, 'Start from an MBR image (the Ubuntu Raspberry Pi images are MBR).');
  }
}

export interface GptPartition {
  index: number; // 1-based slot in the entry array
  typeGuid: string;
  uniqueGuid: string;
  firstLba: number;
  lastLba: number;
  attributes: bigint;
  name: string;
}

export interface Gpt {
  diskGuid: string;
  firstUsableLba: number;
  lastUsableLba: number;
  alternateLba: number;
  partitions: GptPartition[];
}

/** Mixed-endian GUID text as GPT tools print it. */
export function guidToString(b: Buffer): string {
  const h = (x: Buffer) => x.toString('hex');
  const le = (x: Buffer) => h(Buffer.from(x).reverse());
  return `${le(b.subarray(0, 4))}-${le(b.subarray(4, 6))}-${le(b.subarray(6, 8))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`;
}

/** Read the primary GPT (512-byte sectors). Throws CorruptImageError on a bad signature or CRC. */
export function readGpt(io: BlockIO): Gpt {
  const sector = 512;
  if (io.size < 2 * sector) throw new CorruptImageError(`${io.name}: too small for a GPT header`, 0);
  const hdr = io.read(sector, sector);
  if (hdr.toString('latin1', 0, 8) !== 'EFI PART') {
    throw new CorruptImageError(`${io.name}: GPT header signature "EFI PART" missing`, sector);
  }
  const headerSize = hdr.readUInt32LE(12);
  if (headerSize < 92 || headerSize > sector) throw new CorruptImageError(`${io.name}: GPT header size ${headerSize} invalid`, sector + 12);
  const copy = Buffer.from(hdr.subarray(0, headerSize));
  const storedCrc = copy.readUInt32LE(16);
  copy.writeUInt32LE(0, 16);
  if (crc32(copy) >>> 0 !== storedCrc) throw new CorruptImageError(`${io.name}: GPT header CRC mismatch`, sector + 16);
  const entriesLba = Number(hdr.readBigUInt64LE(72));
  const count = hdr.readUInt32LE(80);
  const entrySize = hdr.readUInt32LE(84);
  if (entrySize < 128 || count > 4096) throw new CorruptImageError(`${io.name}: GPT entry array (count ${count}, size ${entrySize}) invalid`, sector + 80);
  const entries = io.read(entriesLba * sector, count * entrySize);
  if (crc32(entries) >>> 0 !== hdr.readUInt32LE(88)) {
    throw new CorruptImageError(`${io.name}: GPT partition entry array CRC mismatch`, entriesLba * sector);
  }
  const partitions: GptPartition[] = [];
  for (let i = 0; i < count; i++) {
    const e = entries.subarray(i * entrySize, (i + 1) * entrySize);
    if (e.subarray(0, 16).every((x) => x === 0)) continue;
    partitions.push({
      index: i + 1,
      typeGuid: guidToString(e.subarray(0, 16)),
      uniqueGuid: guidToString(e.subarray(16, 32)),
      firstLba: Number(e.readBigUInt64LE(32)),
      lastLba: Number(e.readBigUInt64LE(40)),
      attributes: e.readBigUInt64LE(48),
      name: e.toString('utf16le', 56, 128).replace(/\0.*$/s, ''),
    });
  }
  return {
    diskGuid: guidToString(hdr.subarray(56, 72)),
    firstUsableLba: Number(hdr.readBigUInt64LE(40)),
    lastUsableLba: Number(hdr.readBigUInt64LE(48)),
    alternateLba: Number(hdr.readBigUInt64LE(32)),
    partitions,
  };
}
