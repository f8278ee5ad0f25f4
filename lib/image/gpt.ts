// GUID Partition Table: the header (LBA 1, and its backup at the last LBA) and the partition entry array.
// - GPT_HEADER / GPT_ENTRY: every byte of a header sector and of a 128-byte entry, pure (lib/image/layout.ts);
//   decodeGpt checks signature, sizes and both CRC32s; encodeGpt makes primary and backup with their CRCs.
// - readGpt is the only function here that does I/O: the header sector, then the entry array it names.
// - 512-byte logical sectors; errors carry image offsets (the BlockIO's base is added).
import { crc32 } from 'node:zlib';
import type { BlockIO } from './io.ts';
import { PiImageError, CorruptImageError } from '../errors.ts';
import { layout } from './layout.ts';

const SECTOR = 512;

export { GptDiskError } from '../errors.ts';

/** GPT type GUIDs pi-image names: fdisk's name, and the MBR type code of the same kind (what a copy into an MBR
 *  carries, lib/image/partition-table.ts). */
export const GPT_TYPES: Readonly<Record<string, { name: string; mbr: number }>> = {
  'ebd0a0a2-b9e5-4433-87c0-68b6b72699c7': { name: 'Microsoft basic data', mbr: 0x0c },
  'c12a7328-f81f-11d2-ba4b-00a0c93ec93b': { name: 'EFI System', mbr: 0xef },
  '0fc63daf-8483-4772-8e79-3d69d8477de4': { name: 'Linux filesystem', mbr: 0x83 },
  'b921b045-1df0-41c3-af44-4c6f280d3fae': { name: 'Linux root (ARM-64)', mbr: 0x83 },
  '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f': { name: 'Linux swap', mbr: 0x82 },
};

export const GPT_HEADER = layout('GPT header', SECTOR, {
  signature: [0, 'bytes', 8],
  revision: [8, 'u32'],
  headerSize: [12, 'u32'],
  headerCrc: [16, 'u32'],
  reserved: [20, 'u32'],
  currentLba: [24, 'u64'],
  alternateLba: [32, 'u64'],
  firstUsableLba: [40, 'u64'],
  lastUsableLba: [48, 'u64'],
  diskGuid: [56, 'bytes', 16],
  entriesLba: [72, 'u64'],
  entryCount: [80, 'u32'],
  entrySize: [84, 'u32'],
  entriesCrc: [88, 'u32'],
  rest: [92, 'bytes', SECTOR - 92],
});
export type GptHeader = ReturnType<typeof GPT_HEADER.decode>;

export const GPT_ENTRY = layout('GPT entry', 128, {
  typeGuid: [0, 'bytes', 16],
  uniqueGuid: [16, 'bytes', 16],
  firstLba: [32, 'u64'],
  lastLba: [40, 'u64'],
  attributes: [48, 'u64n'],
  name: [56, 'bytes', 72],
});
export type GptEntry = ReturnType<typeof GPT_ENTRY.decode>;

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

/** The inverse of guidToString. */
export function guidFromString(s: string): Buffer {
  const hex = s.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a GUID: ${s}`);
  const b = Buffer.from(hex, 'hex');
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

/** CRC32 of the first headerSize bytes of a header with its CRC field taken as zero. */
function headerCrc(h: GptHeader): number {
  const b = GPT_HEADER.encode({ ...h, headerCrc: 0 });
  return crc32(b.subarray(0, h.headerSize)) >>> 0;
}

/** Where the entry array of `h` is, in bytes from the start of the disk. */
export function gptEntriesRange(h: GptHeader): { offset: number; length: number } {
  return { offset: h.entriesLba * SECTOR, length: h.entryCount * h.entrySize };
}

/** Decode and check a header sector (pure); `at` is its image offset, for errors. */
export function decodeGptHeader(sector: Buffer, name: string, at = SECTOR): GptHeader {
  if (sector.length < SECTOR) throw new CorruptImageError(`${name}: too small for a GPT header`, at);
  const h = GPT_HEADER.decode(sector);
  if (h.signature.toString('latin1') !== 'EFI PART') throw new CorruptImageError(`${name}: GPT header signature "EFI PART" missing`, at);
  if (h.headerSize < 92 || h.headerSize > SECTOR) throw new CorruptImageError(`${name}: GPT header size ${h.headerSize} invalid`, at + 12);
  if (headerCrc(h) !== h.headerCrc) throw new CorruptImageError(`${name}: GPT header CRC mismatch`, at + 16);
  if (h.entrySize < 128 || h.entrySize % 8 !== 0 || h.entryCount > 4096) {
    throw new CorruptImageError(`${name}: GPT entry array (count ${h.entryCount}, size ${h.entrySize}) invalid`, at + 80);
  }
  return h;
}

/** Decode and check the entry array of `h` (pure); `at` is its image offset, for errors. */
export function decodeGptEntries(h: GptHeader, entries: Buffer, name: string, at: number): Gpt {
  if (crc32(entries.subarray(0, h.entryCount * h.entrySize)) >>> 0 !== h.entriesCrc) {
    throw new CorruptImageError(`${name}: GPT partition entry array CRC mismatch`, at);
  }
  const partitions: GptPartition[] = [];
  for (let i = 0; i < h.entryCount; i++) {
    const e = GPT_ENTRY.decode(entries, i * h.entrySize);
    if (e.typeGuid.every((x) => x === 0)) continue;
    if (e.lastLba < e.firstLba || e.firstLba < h.firstUsableLba || e.lastLba > h.lastUsableLba) {
      throw new CorruptImageError(`${name}: GPT partition ${i + 1} (LBA ${e.firstLba}..${e.lastLba}) is outside the usable area`, at + i * h.entrySize + 32);
    }
    partitions.push({
      index: i + 1,
      typeGuid: guidToString(e.typeGuid),
      uniqueGuid: guidToString(e.uniqueGuid),
      firstLba: e.firstLba,
      lastLba: e.lastLba,
      attributes: e.attributes,
      name: e.name.toString('utf16le').replace(/\0.*$/s, ''),
    });
  }
  return {
    diskGuid: guidToString(h.diskGuid),
    firstUsableLba: h.firstUsableLba,
    lastUsableLba: h.lastUsableLba,
    alternateLba: h.alternateLba,
    partitions,
  };
}

/** Read the primary GPT: the header sector, then the entry array it points to. */
export function readGpt(io: BlockIO): Gpt {
  if (io.size < 2 * SECTOR) throw new CorruptImageError(`${io.name}: too small for a GPT header`, io.base);
  const h = decodeGptHeader(io.read(SECTOR, SECTOR), io.name, io.base + SECTOR);
  const r = gptEntriesRange(h);
  if (r.offset < 2 * SECTOR || r.offset + r.length > io.size) {
    throw new CorruptImageError(`${io.name}: GPT entry array at LBA ${h.entriesLba} is outside the disk`, io.base + SECTOR + 72);
  }
  return decodeGptEntries(h, io.read(r.offset, r.length), io.name, io.base + r.offset);
}

/**
 * Encode a whole GPT for a disk of `diskSectors` sectors (pure): the primary header (LBA 1) and entry array (LBA 2),
 * the backup entry array and header at the end, both with their CRCs. 128 entries of 128 bytes, as sgdisk and
 * sfdisk write them. Returns byte chunks with their disk offsets.
 */
export function encodeGpt(g: Gpt, diskSectors: number): { offset: number; bytes: Buffer }[] {
  const count = 128;
  const entries = Buffer.alloc(count * 128);
  for (const p of g.partitions) {
    const name = Buffer.alloc(72);
    name.write(p.name, 'utf16le');
    GPT_ENTRY.encode(
      { typeGuid: guidFromString(p.typeGuid), uniqueGuid: guidFromString(p.uniqueGuid), firstLba: p.firstLba, lastLba: p.lastLba, attributes: p.attributes, name },
      entries,
      (p.index - 1) * 128,
    );
  }
  const entriesCrc = crc32(entries) >>> 0;
  const entrySectors = entries.length / SECTOR;
  const last = diskSectors - 1;
  const header = (currentLba: number, alternateLba: number, entriesLba: number): Buffer => {
    const h: GptHeader = {
      signature: Buffer.from('EFI PART', 'latin1'), revision: 0x00010000, headerSize: 92, headerCrc: 0, reserved: 0,
      currentLba, alternateLba, firstUsableLba: g.firstUsableLba, lastUsableLba: g.lastUsableLba,
      diskGuid: guidFromString(g.diskGuid), entriesLba, entryCount: count, entrySize: 128, entriesCrc, rest: Buffer.alloc(SECTOR - 92),
    };
    return GPT_HEADER.encode({ ...h, headerCrc: headerCrc(h) });
  };
  return [
    { offset: SECTOR, bytes: header(1, last, 2) },
    { offset: 2 * SECTOR, bytes: entries },
    { offset: (last - entrySectors) * SECTOR, bytes: entries },
    { offset: last * SECTOR, bytes: header(last, 1, last - entrySectors) },
  ];
}
