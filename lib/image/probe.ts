// Which filesystem a volume holds, by its own bytes (never by the partition type), from the probes the FAT and
// ext4 engines export: FAT by a sane boot sector (isFat), ext2/3/4 by the superblock magic (isExt4).
// Invariants: fsKindOf is pure; probeFs reads the first PROBE_BYTES of the volume once, nothing else.
import type { BlockIO } from './io.ts';
import { partitionIO } from './mbr.ts';
import { isFat } from './fat/bpb.ts';
import { isExt4 } from './ext4/superblock.ts';

export type FsKind = 'vfat' | 'ext4' | 'unknown';

/** Bytes from the start of a volume that fsKindOf needs (the ext4 superblock ends at 2048). */
export const PROBE_BYTES = 2048;

/** The filesystem the first bytes of a volume announce (ext4 first: its superblock leaves sector 0 alone). */
export function fsKindOf(head: Uint8Array): FsKind {
  if (isExt4(head)) return 'ext4';
  if (isFat(head)) return 'vfat';
  return 'unknown';
}

/** Read the first bytes of `io` and say which filesystem it holds. */
export function probeFs(io: BlockIO): FsKind {
  return fsKindOf(io.read(0, Math.min(io.size, PROBE_BYTES)));
}

/** A probe over the partitions of disk `io` (for lib/pi/partitions.ts): what partition `p` holds. */
export function partitionProbe(io: BlockIO): (p: { index: number; start: number; size: number }) => FsKind {
  return (p) => probeFs(partitionIO(io, p));
}
