// The read-only ext2/3/4 engine: re-exports the public API (Ext4Fs and its types).
export { Ext4Fs, ROOT_INO, type Ext4Stat, type Ext4Info, type ByteRange } from './fs.ts';
export type { FileType } from './inode.ts';
export { isExt4, decodeSuperblock, decodeSuperblockFields, encodeSuperblockFields, type Superblock, type SuperblockFields } from './superblock.ts';
