// Names for what a partition is: fdisk's names of MBR type codes and of the common GPT type GUIDs. Which
// filesystem a partition holds comes from the engines' own probes (lib/image/probe.ts), not from here.
import type { Partition } from '../image/partition-table.ts';
import { GPT_TYPES } from '../image/gpt.ts';

export { probeFs as detectFs, type FsKind } from '../image/probe.ts';

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

/** fdisk's name for a partition's type: the MBR code's, or (GPT) the type GUID's. */
export function partitionTypeName(p: Pick<Partition, 'type' | 'typeGuid'>): string {
  return p.typeGuid ? (GPT_TYPES[p.typeGuid]?.name ?? 'unknown') : mbrTypeName(p.type);
}
