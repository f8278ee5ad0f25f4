// FAT-specific typed errors and helpers for naming byte offsets in the image (not just in the volume).
import { PiImageError } from '../../errors.ts';
import { SliceIO, type BlockIO } from '../io.ts';

/** The volume (or a fixed-size FAT12/16 root directory) has no room for what was asked. */
export class NoSpaceError extends PiImageError {
  constructor(message: string, hint?: string) {
    super('NO_SPACE', message, hint ?? 'use a bigger partition, or remove files first');
  }
}

/** Translate an offset inside `io` into an offset inside the outermost file (through SliceIO windows). */
export function imageOffset(io: BlockIO, offset: number): number {
  let o = offset;
  let cur: BlockIO = io;
  while (cur instanceof SliceIO) {
    o += cur.start;
    cur = cur.parent;
  }
  return o;
}
