// FAT-specific typed errors. (Byte offsets in errors are image offsets: every BlockIO knows its `base`.)
import { PiImageError } from '../../errors.ts';

/** The volume (or a fixed-size FAT12/16 root directory) has no room for what was asked. */
export class NoSpaceError extends PiImageError {
  constructor(message: string, hint?: string) {
    super('NO_SPACE', message, hint ?? 'use a bigger partition, or remove files first');
  }
}
