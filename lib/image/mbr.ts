// Master Boot Record: the four primary partition entries and the disk signature (the "disk id" that
// PARTUUID=SSSSSSSS-PP is made from).
// - decodeMbrSector/encodeMbrSector: every byte of sector 0, pure; decodeMbr/encodeMbr add the checks;
//   readMbr/writeMbr are the only functions here that do I/O (one sector).
// - Errors carry image offsets (the BlockIO's base is added).
// - Logical partitions inside an extended one are detected, not followed.
import type { BlockIO } from './io.ts';
import { SliceIO } from './io.ts';
import { CorruptImageError, InputError } from '../errors.ts';
import { GptDiskError } from './gpt.ts';
import { layout } from './layout.ts';

export { GptDiskError } from './gpt.ts';

export const SECTOR = 512;
const TABLE = 446;
const SIG_OFFSET = 440;
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);
/** MBR types that claim a FAT file system (FAT12/16/32, CHS and LBA); GPT basic data maps to 0x0c. */
export const FAT_MBR_TYPES: ReadonlySet<number> = new Set([0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e]);

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

/** Sector 0 of a disk as it is on disk: boot code, disk signature, four 16-byte entries, 0x55AA. */
export const MBR_ENTRY = layout('MBR partition entry', 16, {
  status: [0, 'u8'],
  chsFirst: [1, 'bytes', 3],
  type: [4, 'u8'],
  chsLast: [5, 'bytes', 3],
  startLba: [8, 'u32'],
  sectors: [12, 'u32'],
});
export type MbrEntry = ReturnType<typeof MBR_ENTRY.decode>;

const MBR_SECTOR = layout('MBR', SECTOR, {
  bootCode: [0, 'bytes', SIG_OFFSET],
  diskSignature: [SIG_OFFSET, 'u32'],
  reserved: [444, 'u16'],
  table: [TABLE, 'bytes', 64],
  bootSignature: [510, 'u16'],
});

/** The raw fields of an MBR sector, every byte of it (no checks). */
export interface MbrSector {
  bootCode: Buffer;
  diskSignature: number;
  reserved: number;
  entries: MbrEntry[];
  /** 0xAA55 (bytes 55 AA) on a valid MBR. */
  bootSignature: number;
}

/** Decode the 512 bytes of sector 0 at `at` in `buf`; pure, no checks. */
export function decodeMbrSector(buf: Buffer, at = 0): MbrSector {
  const { table, ...rest } = MBR_SECTOR.decode(buf, at);
  return { ...rest, entries: [0, 1, 2, 3].map((i) => MBR_ENTRY.decode(table, i * 16)) };
}

/** Encode an MBR sector (512 bytes); the inverse of decodeMbrSector. */
export function encodeMbrSector(m: MbrSector): Buffer {
  const table = Buffer.alloc(64);
  m.entries.forEach((e, i) => MBR_ENTRY.encode(e, table, i * 16));
  return MBR_SECTOR.encode({ bootCode: m.bootCode, diskSignature: m.diskSignature, reserved: m.reserved, table, bootSignature: m.bootSignature });
}

/** Does this sector end in the boot signature 55 AA (an MBR, or a protective MBR before a GPT)? Pure. */
export function hasBootSignature(sector: Buffer): boolean {
  return sector.length >= SECTOR && decodeMbrSector(sector).bootSignature === 0xaa55;
}

/** Where a sector came from, for error messages: the disk's name, size, and the image offset of the sector. */
export interface DecodeContext {
  name: string;
  /** Disk size in bytes: partitions must end inside it. */
  diskSize: number;
  /** Image offset of byte 0 of the sector (0 for a disk; more for a disk inside a file). */
  at?: number;
}

/** Decode and check an MBR (pure). Throws CorruptImageError (with an image byte offset) or GptDiskError. */
export function decodeMbr(sector: Buffer, ctx: DecodeContext): Mbr {
  const at = ctx.at ?? 0;
  const name = ctx.name;
  if (sector.length < SECTOR || ctx.diskSize < SECTOR) {
    throw new CorruptImageError(`${name}: image is ${ctx.diskSize} bytes, shorter than one 512-byte sector: no MBR`, at);
  }
  const m = decodeMbrSector(sector);
  if (m.bootSignature !== 0xaa55) {
    throw new CorruptImageError(
      `${name}: no MBR boot signature 0x55AA (found 0x${sector[510].toString(16).padStart(2, '0')}${sector[511].toString(16).padStart(2, '0')})`,
      at + 510,
      'Is this a raw disk image? Compressed images (.xz, .zip) must be decompressed first.',
    );
  }
  const diskSectors = Math.floor(ctx.diskSize / SECTOR);
  const partitions: MbrPartition[] = [];
  m.entries.forEach(({ status, type, startLba, sectors }, i) => {
    const off = at + TABLE + i * 16;
    if (type === 0 && sectors === 0) return;
    if (type === 0xee) throw new GptDiskError(name);
    if (status !== 0x00 && status !== 0x80) {
      throw new CorruptImageError(`${name}: partition ${i + 1} has an invalid status byte 0x${status.toString(16)}`, off);
    }
    if (type === 0 || sectors === 0) return; // half-empty slot: ignored, as the kernel does
    if (startLba === 0) throw new CorruptImageError(`${name}: partition ${i + 1} starts at LBA 0, over the MBR itself`, off + 8);
    if (startLba + sectors > diskSectors) {
      throw new CorruptImageError(
        `${name}: partition ${i + 1} (LBA ${startLba}+${sectors}) goes beyond the end of the disk (${diskSectors} sectors)`,
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
  });
  checkOverlaps(name, partitions, (p) => new CorruptImageError(
    `${name}: partitions ${p[0].index} and ${p[1].index} overlap`, at + TABLE + (p[1].index - 1) * 16 + 8,
  ));
  return { diskSignature: m.diskSignature, partitions, sectorSize: 512 };
}

/** Read and check the partition table: one read of sector 0, then decodeMbr. */
export function readMbr(io: BlockIO): Mbr {
  const sector = io.size >= SECTOR ? io.read(0, SECTOR) : Buffer.alloc(0);
  return decodeMbr(sector, { name: io.name, diskSize: io.size, at: io.base });
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

/** The entries of a new table, checked: at most four primary entries that fit on the disk and do not overlap. */
function checkSpecs(name: string, diskSize: number, t: { diskSignature: number; partitions: MbrPartitionSpec[] }): void {
  if (t.partitions.length > 4) throw new InputError(`${name}: an MBR holds at most 4 primary partitions, got ${t.partitions.length}`);
  if (!Number.isInteger(t.diskSignature) || t.diskSignature < 0 || t.diskSignature > 0xffffffff) {
    throw new InputError(`${name}: disk signature ${t.diskSignature} is not a 32-bit unsigned number`);
  }
  const diskSectors = Math.floor(diskSize / SECTOR);
  t.partitions.forEach((p, i) => {
    if (!Number.isInteger(p.type) || p.type <= 0 || p.type > 0xff) throw new InputError(`${name}: partition ${i + 1}: type ${p.type} is not 1..255`);
    if (!Number.isInteger(p.startLba) || !Number.isInteger(p.sectors) || p.startLba < 1 || p.sectors < 1 || p.startLba + p.sectors > 0xffffffff + 1) {
      throw new InputError(`${name}: partition ${i + 1}: start ${p.startLba} / ${p.sectors} sectors is not valid for an MBR`);
    }
    if (p.startLba + p.sectors > diskSectors) {
      throw new InputError(`${name}: partition ${i + 1} (LBA ${p.startLba}+${p.sectors}) does not fit on the disk (${diskSectors} sectors)`);
    }
  });
  checkOverlaps(name, t.partitions.map((p, i) => ({ ...p, index: i + 1 })), (pair) =>
    new InputError(`${name}: partitions ${pair[0].index} and ${pair[1].index} overlap`));
}

/**
 * Encode a partition table (up to four primary entries, slot order as given) and disk signature as sector 0,
 * keeping the boot code bytes 0..439 of `bootCode` (zeros when not given); pure. Throws InputError for entries
 * that do not fit a disk of `diskSize` bytes.
 */
export function encodeMbr(
  t: { diskSignature: number; partitions: MbrPartitionSpec[] },
  opts: { diskSize: number; name?: string; bootCode?: Buffer },
): Buffer {
  checkSpecs(opts.name ?? 'MBR', opts.diskSize, t);
  const empty: MbrEntry = { status: 0, chsFirst: Buffer.alloc(3), type: 0, chsLast: Buffer.alloc(3), startLba: 0, sectors: 0 };
  const entries = [0, 1, 2, 3].map((i): MbrEntry => {
    const p = t.partitions[i];
    if (!p) return empty;
    return {
      status: p.bootable ? 0x80 : 0x00,
      chsFirst: Buffer.from(chs(p.startLba)),
      type: p.type,
      chsLast: Buffer.from(chs(p.startLba + p.sectors - 1)),
      startLba: p.startLba,
      sectors: p.sectors,
    };
  });
  const bootCode = Buffer.alloc(SIG_OFFSET);
  opts.bootCode?.copy(bootCode, 0, 0, SIG_OFFSET);
  return encodeMbrSector({ bootCode, diskSignature: t.diskSignature >>> 0, reserved: 0, entries, bootSignature: 0xaa55 });
}

/**
 * Write a new partition table (up to four primary entries, slot order as given) and disk signature into sector 0,
 * keeping the boot code bytes 0..439 that are already there. Throws InputError for entries that do not fit.
 */
export function writeMbr(
  io: BlockIO,
  t: { diskSignature: number; partitions: MbrPartitionSpec[] },
): void {
  if (io.size < SECTOR) throw new CorruptImageError(`${io.name}: image is shorter than one 512-byte sector`, io.base);
  io.write(0, encodeMbr(t, { diskSize: io.size, name: io.name, bootCode: io.read(0, SIG_OFFSET) }));
}

/** A BlockIO window onto one partition. */
export function partitionIO(io: BlockIO, p: Pick<MbrPartition, 'index' | 'start' | 'size'>): SliceIO {
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
