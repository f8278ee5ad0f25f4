// Which filesystem a partition holds, by its own bytes (never by the partition type): FAT by a sane BIOS
// Parameter Block in the boot sector, ext2/3/4 by the superblock magic 0xEF53 at byte 1080.
import type { BlockIO } from '../image/io.ts';

export type FsKind = 'vfat' | 'ext4' | 'unknown';

/** ext2/3/4 superblock magic: u16 LE 0xEF53 at 1024 + 0x38. */
export function looksExt4(io: BlockIO): boolean {
  if (io.size < 1082) return false;
  return io.read(1080, 2).readUInt16LE(0) === 0xef53;
}

/** A FAT boot sector: jump instruction, power-of-two sector and cluster sizes, reserved sectors, 1–2 FATs, 0x55AA. */
export function looksFat(io: BlockIO): boolean {
  if (io.size < 512) return false;
  const b = io.read(0, 512);
  if (!(b[0] === 0xeb || b[0] === 0xe9)) return false;
  if (b[510] !== 0x55 || b[511] !== 0xaa) return false;
  const bps = b.readUInt16LE(11);
  const spc = b[13];
  const reserved = b.readUInt16LE(14);
  const fats = b[16];
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  return [512, 1024, 2048, 4096].includes(bps) && pow2(spc) && reserved > 0 && (fats === 1 || fats === 2);
}

export function detectFs(io: BlockIO): FsKind {
  if (looksExt4(io)) return 'ext4';
  if (looksFat(io)) return 'vfat';
  return 'unknown';
}

const TYPE_NAMES: Record<number, string> = {
  0x01: 'FAT12',
  0x04: 'FAT16 <32M',
  0x05: 'Extended',
  0x06: 'FAT16',
  0x07: 'HPFS/NTFS/exFAT',
  0x0b: 'W95 FAT32',
  0x0c: 'W95 FAT32 (LBA)',
  0x0e: 'W95 FAT16 (LBA)',
  0x0f: 'W95 Ext\'d (LBA)',
  0x82: 'Linux swap',
  0x83: 'Linux',
  0x85: 'Linux extended',
  0x8e: 'Linux LVM',
  0xda: 'Non-FS data',
  0xee: 'GPT protective',
  0xef: 'EFI (FAT-12/16/32)',
  0xfd: 'Linux raid autodetect',
};

/** fdisk's name for an MBR partition type. */
export function mbrTypeName(type: number): string {
  return TYPE_NAMES[type] ?? 'unknown';
}
