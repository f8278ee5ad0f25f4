// Names for what a partition is: fdisk's names of MBR type codes and of the common GPT type GUIDs. Which
// filesystem a partition holds comes from the engines' own probes (lib/image/probe.ts), not from here.
import type { Partition } from '../image/partition-table.ts';

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

const GPT_NAMES: Record<string, string> = {
  'ebd0a0a2-b9e5-4433-87c0-68b6b72699c7': 'Microsoft basic data',
  'c12a7328-f81f-11d2-ba4b-00a0c93ec93b': 'EFI System',
  '0fc63daf-8483-4772-8e79-3d69d8477de4': 'Linux filesystem',
  'b921b045-1df0-41c3-af44-4c6f280d3fae': 'Linux root (ARM-64)',
  '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f': 'Linux swap',
};

/** fdisk's name for a partition's type: the MBR code's, or (GPT) the type GUID's. */
export function partitionTypeName(p: Pick<Partition, 'type' | 'typeGuid'>): string {
  return p.typeGuid ? (GPT_NAMES[p.typeGuid] ?? 'unknown') : mbrTypeName(p.type);
}
