// One partition-table interface with MBR and GPT behind it (as go-diskfs's partition.Table): callers ask for the
// partitions (start, size, type, PARTUUID) and never look at which scheme holds them.
// - tableFromBytes decodes (pure: the first bytes of the disk, and the GPT entry array when it lies further on);
//   readTable only reads what the table needs, then decodes. encodeTable gives the bytes to write, writeTable
//   writes them.
// - A GPT partition gets the MBR type code of the same kind (basic data -> 0x0c, Linux -> 0x83, ESP -> 0xef), so
//   the MBR outputs the build writes copy a type from either scheme.
// - Partitions are plain data (they cross to worker threads and into the cache's records).
import type { BlockIO } from './io.ts';
import { CorruptImageError } from '../errors.ts';
import { decodeMbr, decodeMbrSector, encodeMbr, partUuid, SECTOR, type MbrPartition } from './mbr.ts';

export { partitionIO } from './mbr.ts';
import { decodeGptEntries, decodeGptHeader, encodeGpt, gptEntriesRange, GPT_TYPES, type Gpt } from './gpt.ts';

export type TableScheme = 'mbr' | 'gpt';

export interface Partition {
  /** 1-based: the MBR slot or the GPT entry number (the N in /dev/sdXN). */
  index: number;
  /** Byte offset of the partition from the start of the disk, and its size in bytes. */
  start: number;
  size: number;
  startLba: number;
  sectors: number;
  /** MBR type code (for GPT: the code of the same kind, 0 when there is none). */
  type: number;
  /** MBR: the active flag; GPT: the legacy BIOS bootable attribute (bit 2). */
  bootable: boolean;
  /** GPT type GUID, lowercase (GPT only). */
  typeGuid?: string;
  /** GPT partition name (GPT only). */
  name?: string;
  /** PARTUUID as Linux shows it: 'ssssssss-pp' (MBR) or the GPT unique GUID. */
  uuid: string;
  /** An MBR extended (container) partition: its logical partitions are not read. */
  extended?: boolean;
}

export interface PartitionTable {
  scheme: TableScheme;
  /** The disk id: 8 hex digits (MBR disk signature) or the GPT disk GUID. */
  diskId: string;
  /** The MBR disk signature (for GPT: that of the protective MBR, usually 0). */
  diskSignature: number;
  partitions: Partition[];
  sectorSize: 512;
}

function fromMbr(p: MbrPartition, diskSignature: number): Partition {
  return { ...p, uuid: partUuid(diskSignature, p.index) };
}

function fromGpt(g: Gpt, diskSignature: number): PartitionTable {
  return {
    scheme: 'gpt',
    diskId: g.diskGuid,
    diskSignature,
    sectorSize: 512,
    partitions: g.partitions.map((p) => ({
      index: p.index,
      start: p.firstLba * SECTOR,
      size: (p.lastLba - p.firstLba + 1) * SECTOR,
      startLba: p.firstLba,
      sectors: p.lastLba - p.firstLba + 1,
      type: GPT_TYPES[p.typeGuid]?.mbr ?? 0,
      bootable: (p.attributes & 4n) !== 0n,
      typeGuid: p.typeGuid,
      name: p.name,
      uuid: p.uniqueGuid,
    })),
  };
}

/** Does sector 0 hold a protective MBR (an 0xEE entry), so the real table is the GPT at LBA 1? */
function isProtective(sector0: Buffer): boolean {
  const m = decodeMbrSector(sector0);
  return m.bootSignature === 0xaa55 && m.entries.some((e) => e.type === 0xee);
}

interface Where {
  name: string;
  diskSize: number;
  /** Image offset of the disk's byte 0 (for errors). */
  at?: number;
}

/**
 * Decode the table of a disk from its first bytes (pure). `head` holds at least sector 0 (MBR) or sectors 0 and 1
 * (GPT); the GPT entry array is taken from `head` when it holds it, else from `entries` (read by the caller at
 * gptEntriesRange). Throws CorruptImageError with image offsets.
 */
export function tableFromBytes(head: Buffer, where: Where, entries?: Buffer): PartitionTable {
  const at = where.at ?? 0;
  if (head.length >= SECTOR && where.diskSize >= 2 * SECTOR && isProtective(head)) {
    const diskSignature = head.readUInt32LE(440);
    if (head.length < 2 * SECTOR) throw new CorruptImageError(`${where.name}: GPT header (LBA 1) not given`, at + SECTOR);
    const h = decodeGptHeader(head.subarray(SECTOR, 2 * SECTOR), where.name, at + SECTOR);
    const r = gptEntriesRange(h);
    if (r.offset < 2 * SECTOR || r.offset + r.length > where.diskSize) {
      throw new CorruptImageError(`${where.name}: GPT entry array at LBA ${h.entriesLba} is outside the disk`, at + SECTOR + 72);
    }
    const bytes = head.length >= r.offset + r.length ? head.subarray(r.offset, r.offset + r.length) : entries;
    if (!bytes || bytes.length < r.length) throw new CorruptImageError(`${where.name}: GPT entry array not given`, at + r.offset);
    if (h.lastUsableLba >= where.diskSize / SECTOR) {
      throw new CorruptImageError(
        `${where.name}: GPT says the disk has ${h.lastUsableLba + 1}+ sectors, it has ${Math.floor(where.diskSize / SECTOR)}`,
        at + SECTOR + 48,
        'The image may be truncated; re-download or re-decompress it.',
      );
    }
    return fromGpt(decodeGptEntries(h, bytes, where.name, at + r.offset), diskSignature);
  }
  const mbr = decodeMbr(head.subarray(0, SECTOR), { name: where.name, diskSize: where.diskSize, at });
  return {
    scheme: 'mbr',
    diskId: (mbr.diskSignature >>> 0).toString(16).padStart(8, '0'),
    diskSignature: mbr.diskSignature,
    sectorSize: 512,
    partitions: mbr.partitions.map((p) => fromMbr(p, mbr.diskSignature)),
  };
}

/** Read the partition table of a disk: sectors 0 and 1, then (GPT) the entry array; then tableFromBytes. */
export function readTable(io: BlockIO): PartitionTable {
  const where = { name: io.name, diskSize: io.size, at: io.base };
  const head = io.read(0, Math.min(io.size, 2 * SECTOR));
  if (head.length >= 2 * SECTOR && isProtective(head)) {
    const r = gptEntriesRange(decodeGptHeader(head.subarray(SECTOR), io.name, io.base + SECTOR));
    const entries = r.offset >= 2 * SECTOR && r.offset + r.length <= io.size ? io.read(r.offset, r.length) : undefined;
    return tableFromBytes(head, where, entries);
  }
  return tableFromBytes(head, where);
}

/**
 * The bytes that make `t` on a disk of `diskSize` bytes, with their offsets (pure): MBR: sector 0 (boot code from
 * `bootCode`, zeros otherwise); GPT: a protective MBR, primary and backup headers and entry arrays.
 */
export function encodeTable(t: PartitionTable, diskSize: number, bootCode?: Buffer): { offset: number; bytes: Buffer }[] {
  const sectors = Math.floor(diskSize / SECTOR);
  if (t.scheme === 'mbr') {
    const specs = t.partitions.map((p) => ({ type: p.type, bootable: p.bootable, startLba: p.startLba, sectors: p.sectors }));
    return [{ offset: 0, bytes: encodeMbr({ diskSignature: t.diskSignature, partitions: specs }, { diskSize, bootCode }) }];
  }
  const protective = encodeMbr(
    { diskSignature: t.diskSignature, partitions: [{ type: 0xee, startLba: 1, sectors: Math.min(sectors - 1, 0xffffffff) }] },
    { diskSize, bootCode },
  );
  const first = 2 + (128 * 128) / SECTOR;
  const gpt: Gpt = {
    diskGuid: t.diskId,
    firstUsableLba: first,
    lastUsableLba: sectors - first,
    alternateLba: sectors - 1,
    partitions: t.partitions.map((p) => ({
      index: p.index,
      typeGuid: p.typeGuid ?? '0fc63daf-8483-4772-8e79-3d69d8477de4',
      uniqueGuid: p.uuid,
      firstLba: p.startLba,
      lastLba: p.startLba + p.sectors - 1,
      attributes: p.bootable ? 4n : 0n,
      name: p.name ?? '',
    })),
  };
  return [{ offset: 0, bytes: protective }, ...encodeGpt(gpt, sectors)];
}

/** Write `t` onto `io` (sector 0, and for GPT both headers and entry arrays), keeping the MBR boot code. */
export function writeTable(io: BlockIO, t: PartitionTable): void {
  for (const c of encodeTable(t, io.size, io.read(0, 440))) io.write(c.offset, c.bytes);
}
