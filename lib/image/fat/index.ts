// Public face of the FAT12/16/32 engine: open a volume and work with paths; the rest are building blocks.
export { FatFs, type ByteRange, type FatEntry, type FileSource } from './fs.ts';
export { NoSpaceError } from './errors.ts';
export { parseBootSector, decodeBootSector, encodeBootSector, fatGeometry, isFat, type FatGeometry, type BootSector } from './bpb.ts';
export { formatFat32, type FormatFat32Options } from './format.ts';
