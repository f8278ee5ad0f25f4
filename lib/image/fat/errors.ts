// FAT-specific typed errors. (Byte offsets in errors are image offsets: every BlockIO knows its `base`.)
import { PiImageError } from '../../errors.ts';

export { NoSpaceError } from '../../errors.ts';
