// Master Boot Record: read and write the four primary partition entries and the disk signature (the "disk id"
// that PARTUUID=SSSSSSSS-PP is made from). Logical partitions inside an extended one are detected, not followed.
import type { BlockIO } from './io.ts';
import { SliceIO } from './io.ts';
import { CorruptImageError, InputError } from '../errors.ts';
import { GptDiskError } from './gpt.ts';

export { GptDiskError } from './gpt.ts';

export const SECTOR = 512;
const TABLE = 446;
const SIG_OFFSET = 440;
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);

export interface MbrPartition {
  /** 1-based slot number (1..4): the PP in PARTUUID and the N in /dev/sdXN. */
  index: number;
  type: number;
  bootable: boolean;
  startLba: number;
  sectors: number;
  /** Byte offset of the partition from the start of the disk. */
  start: number;
  /** Size in bytes. */
  size: number;
  /** True for an extended (container) partition: 0x05, 0x0F or 0x85. Its logical partitions are not read. */
  extended?: boolean;
}

export interface Mbr {
  diskSignature: number;
  /** Non-empty slots only, in slot order. */
  partitions: MbrPartition[];
  sectorSize: 512;
}

export interface MbrPartitionSpec {
  type: number;
  bootable?: boolean;
  startLba: number;
  sectors: number;
}

/** Read and check the partition table. Throws CorruptImageError (with a byte offset) or GptDiskError. */
export function readMbr(io: BlockIO): Mbr {
  if (io.size < SECTOR) {
    throw new CorruptImageError(`${io.name}: image is ${io.size} bytes, shorter than one 512-byte sector: no MBR`, 0);
  }
  const s = io.read(0, SECTOR);
  if (s[510] !== 0x55 || s[511] !== 0xaa) {
    throw new CorruptImageError(
      `${io.name}: no MBR boot signature 0x55AA (found 0x${s[510].toString(16).padStart(2, '0')}${s[511].toString(16).padStart(2, '0')})`,
      510,
      'Is this a raw disk image? Compressed images (.xz, .zip) must be decompressed first.',
    );
  }
  const diskSectors = Math.floor(io.size / SECTOR);
  const partitions: MbrPartition[] = [];
  for (let i = 0; i < 4; i++) {
    const off = TABLE + i * 16;
    const status = s[off];
    const type = s[off + 4];
    const startLba = s.readUInt32LE(off + 8);
    const sectors = s.readUInt32LE(off + 12);
    if (type === 0 && sectors === 0) continue;
    if (type === 0xee) throw new GptDiskError(io.name);
    if (status !== 0x00 && status !== 0x80) {
      throw new CorruptImageError(`${io.name}: partition ${i + 1} has an invalid status byte 0x${status.toString(16)}`, off);
    }
    if (type === 0 || sectors === 0) continue; // half-empty slot: ignored, as the kernel does
    if (startLba === 0) throw new CorruptImageError(`${io.name}: partition ${i + 1} starts at LBA 0, over the MBR itself`, off + 8);
    if (startLba + sectors > diskSectors) {
      throw new CorruptImageError(
        `${io.name}: partition ${i + 1} (LBA ${startLba}+${sectors}) goes beyond the end of the disk (${diskSectors} sectors)`,
        off + 8,
        'The image may be truncated; re-download or re-decompress it.',
      );
    }
    partitions.push({
      index: i + 1,
      type,
      bootable: status === 0x80,
      startLba,
      sectors,
      start: startLba * SECTOR,
      size: sectors * SECTOR,
      ...(EXTENDED_TYPES.has(type) ? { extended: true } : {}),
    });
  }
  checkOverlaps(io.name, partitions, (p) => new CorruptImageError(
    `${io.name}: partitions ${p[0].index} and ${p[1].index} overlap`, TABLE + (p[1].index - 1) * 16 + 8,
  ));
  return { diskSignature: s.readUInt32LE(SIG_OFFSET), partitions, sectorSize: 512 };
}

function checkOverlaps<T extends { startLba: number; sectors: number }>(
  _name: string, parts: T[], fail: (pair: [T, T]) => Error,
): void {
  for (let a = 0; a < parts.length; a++) {
    for (let b = a + 1; b < parts.length; b++) {
      const p = parts[a];
      const q = parts[b];
      if (p.startLba < q.startLba + q.sectors && q.startLba < p.startLba + p.sectors) throw fail([p, q]);
    }
  }
}

/** CHS triple for an LBA the way fdisk writes it (255 heads, 63 sectors/track); clamped to 1023/254/63. */
function chs(lba: number): [number, number, number] {
  const heads = 255;
  const spt = 63;
  let c = Math.floor(lba / (heads * spt));
  let h = Math.floor(lba / spt) % heads;
  let sct = (lba % spt) + 1;
  if (c > 1023) {
    c = 1023;
    h = 254;
    sct = 63;
  }
  return [h, ((c >> 2) & 0xc0) | sct, c & 0xff];
}

/**
 * Write a new partition table (up to four primary entries, slot order as given) and disk signature into sector 0,
 * keeping the boot code bytes 0..439 that are already there. Throws InputError for entries that do not fit.
 */
export function writeMbr(
  io: BlockIO,
  t: { diskSignature: number; partitions: MbrPartitionSpec[] },
): void {
  if (io.size < SECTOR) throw new CorruptImageError(`${io.name}: image is shorter than one 512-byte sector`, 0);
  if (t.partitions.length > 4) throw new InputError(`${io.name}: an MBR holds at most 4 primary partitions, got ${t.partitions.length}`);
  if (!Number.isInteger(t.diskSignature) || t.diskSignature < 0 || t.diskSignature > 0xffffffff) {
    throw new InputError(`${io.name}: disk signature ${t.diskSignature} is not a 32-bit unsigned number`);
  }
  const diskSectors = Math.floor(io.size / SECTOR);
  t.partitions.forEach((p, i) => {
    if (!Number.isInteger(p.type) || p.type <= 0 || p.type > 0xff) throw new InputError(`${io.name}: partition ${i + 1}: type ${p.type} is not 1..255`);
    if (!Number.isInteger(p.startLba) || !Number.isInteger(p.sectors) || p.startLba < 1 || p.sectors < 1 || p.startLba + p.sectors > 0xffffffff + 1) {
      throw new InputError(`${io.name}: partition ${i + 1}: start ${p.startLba} / ${p.sectors} sectors is not valid for an MBR`);
    }
    if (p.startLba + p.sectors > diskSectors) {
      throw new InputError(`${io.name}: partition ${i + 1} (LBA ${p.startLba}+${p.sectors}) does not fit on the disk (${diskSectors} sectors)`);
    }
  });
  checkOverlaps(io.name, t.partitions.map((p, i) => ({ ...p, index: i + 1 })), (pair) =>
    new InputError(`${io.name}: partitions ${pair[0].index} and ${pair[1].index} overlap`));

  const s = io.read(0, SECTOR);
  s.fill(0, SIG_OFFSET);
  s.writeUInt32LE(t.diskSignature >>> 0, SIG_OFFSET);
  t.partitions.forEach((p, i) => {
    const off = TABLE + i * 16;
    s[off] = p.bootable ? 0x80 : 0x00;
    s.set(chs(p.startLba), off + 1);
    s[off + 4] = p.type;
    s.set(chs(p.startLba + p.sectors - 1), off + 5);
    s.writeUInt32LE(p.startLba, off + 8);
    s.writeUInt32LE(p.sectors, off + 12);
  });
  s[510] = 0x55;
  s[511] = 0xaa;
  io.write(0, s);
}

/** A BlockIO window onto one partition. */
export function partitionIO(io: BlockIO, p: MbrPartition): SliceIO {
  return new SliceIO(io, p.start, p.size, `${io.name} p${p.index}`);
}

/** The PARTUUID Linux gives an MBR partition: disk signature and slot, lowercase hex ('5452574f-01'). */
export function partUuid(diskSignature: number, index: number): string {
  return `${diskIdText(diskSignature).slice(2)}-${index.toString(16).padStart(2, '0')}`;
}

/** The disk signature as sfdisk prints it: '0x' and 8 lowercase hex digits ('0x5452574f'). */
export function diskIdText(diskSignature: number): string {
  return `0x${(diskSignature >>> 0).toString(16).padStart(8, '0')}`;
}
