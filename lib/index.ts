// pi-image as a library: the same operations the CLI runs, for scripts and other tools. Low layers (disk images,
// filesystems, block maps) first, then sources, cluster profiles and seeds, and the jobs: build, flash, netboot.
export * from './errors.ts';
export type { ProgressEvent, OnProgress } from './progress.ts';
export { PACKAGE_VERSION } from './paths.ts';

// Disk images in user space: positional I/O, partition tables, filesystems, sparse copies, block maps, digests.
export { FileIO, SliceIO, MemoryIO, type BlockIO } from './image/io.ts';
export { readTable, tableFromBytes, encodeTable, writeTable, type PartitionTable, type Partition, type TableScheme } from './image/partition-table.ts';
export { readMbr, writeMbr, decodeMbr, encodeMbr, partitionIO, partUuid, type Mbr, type MbrPartition, type MbrPartitionSpec } from './image/mbr.ts';
export { readGpt, decodeGptHeader, decodeGptEntries, encodeGpt, GptDiskError, type Gpt, type GptPartition } from './image/gpt.ts';
export { probeFs, fsKindOf, type FsKind } from './image/probe.ts';
export { FatFs, formatFat32, NoSpaceError, isFat, type FatEntry } from './image/fat/index.ts';
export { Ext4Fs, isExt4, type Ext4Stat, type Ext4Info } from './image/ext4/index.ts';
export { copyRanges, mergeRanges, dataRangesOfFile, type ByteRange } from './image/sparse.ts';
export { parseBmap, renderBmap, createBmap, writeBmapFile, type Bmap, type BmapRange } from './image/bmap.ts';
export { digestImage, ImageDigester, sha256File, type ImageDigest } from './image/digest.ts';

// Raspberry Pi boot files: config.txt resolution, cmdline, kernels, USB quirks.
export * from './pi/index.ts';
export { inspectImage } from './inspect/index.ts';

// Base images: catalog, downloads, decompression, cache.
export * from './source/index.ts';

// Cluster profiles, secrets, per-node plans and cloud-init seeds.
export * from './cluster/index.ts';

// First-boot downloads pinned: the lockfile, the registry client, the node's bundle.
export { makeLock, readLock, lockPathFor, type LockOptions, type LockResult } from './lock/lock.ts';
export { encodeLock, decodeLock, staleReason, type Lock, type LockFile, type LockImage, type LockPackage, type PackageResolver } from './lock/lockfile.ts';
export { RegistryClient } from './lock/registry.ts';

// The jobs.
export { build, type BuildOptions, type BuildResult } from './assemble/build.ts';
export { flash, verifyImage, verifyTarget, FlashVerifyError, type FlashOptions, type FlashResult } from './flash/flash.ts';
export * from './netboot/index.ts';
