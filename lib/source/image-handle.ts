// The resolved base image as one handle, the same whether it was in the cache already or is still being
// decompressed into it: catalog entry, partition table, a reader, and `done` for the verified cached file.
// Invariants:
// - `path` is the cache entry's final name; it exists (and holds a verified image) once `done` has resolved.
// - `open()` reads the image at once: while xz still writes it, a read waits for its bytes (GrowingFileIO) and
//   throws when the decompression fails; `done` then rejects with the cause. The wait blocks the reading thread and
//   the decoder is driven from the main one, so follow a growing image from a worker thread (as build's lanes do).
// - `ref` is plain data (a SharedArrayBuffer at most): it crosses to worker threads, where openImage(ref) reads.
import { FileIO, type BlockIO } from '../image/io.ts';
import type { PartitionTable } from '../image/partition-table.ts';
import { GrowingFileIO, type GrowingFile } from '../image/growing-io.ts';
import type { CatalogEntry } from './catalog.ts';
import type { ImageRecord, RecordedPartition } from './cache.ts';

/** A reader of the base image (read-only), to be closed. */
export type ImageReader = BlockIO & { close(): void };

/** Where a reader in any thread finds the image: the cache file, and while it is written, its shared state. */
export interface ImageRef {
  /** The cache entry's final name. */
  path: string;
  size: number;
  /** Set while the image is being decompressed (the temporary file and the writer's state). */
  growing?: GrowingFile;
}

/** The partition table as resolve read it (the record's, or from the first bytes of a growing image). */
export interface ImageTable {
  diskSignature: number;
  partitions: RecordedPartition[];
}

/** The verified image in the cache and its record: what `done` gives. */
export interface CachedImage {
  /** The raw sparse .img in the cache (treat as read-only). */
  path: string;
  /** Catalog id, or the source's file name. */
  id: string;
  /**
   * sha256 of the file it came from, as published (compressed): the cache key, and the image's identity (it is what
   * the release's SHA256SUMS lists). The raw image is not hashed again: see ImageRecord.
   */
  sourceSha256: string;
  entry?: CatalogEntry;
  size: number;
  diskSignature: number;
  partitions: RecordedPartition[];
  /** How it was decompressed: 'xz' (system xz -dc), 'wasm', 'zlib', 'unzipper', 'copy'. */
  decoder: string;
  /** True when the image was already in the cache (nothing downloaded or decompressed). */
  cached: boolean;
  record: ImageRecord;
}

/** The handle resolveImage gives (see the file header). */
export interface ResolvedImage {
  id: string;
  entry?: CatalogEntry;
  /** sha256 of the source file as published: the cache key and the image's identity. */
  sourceSha256: string;
  /** The cache entry's final name (see the invariants). */
  path: string;
  size: number;
  table: ImageTable;
  /** True when the image was in the cache before this call. */
  cached: boolean;
  /** Plain data for openImage in another thread. */
  ref: ImageRef;
  open(): ImageReader;
  /** The verified cached image; rejects with the download's, decoder's or check's error. */
  done: Promise<CachedImage>;
}

/** Open the image `ref` names: the cache file, or the growing file while it is written. */
export function openImage(ref: ImageRef): ImageReader {
  return ref.growing ? GrowingFileIO.open(ref.growing) : FileIO.open(ref.path);
}

/** The recorded form of a decoded table. */
export function tableOf(mbr: Pick<PartitionTable, 'diskSignature' | 'partitions'>): ImageTable {
  return {
    diskSignature: mbr.diskSignature,
    partitions: mbr.partitions.map((p) => ({ index: p.index, type: p.type, bootable: p.bootable, startLba: p.startLba, sectors: p.sectors, start: p.start, size: p.size })),
  };
}

/** The cached image a record describes. */
export function cachedImage(path: string, record: ImageRecord, entry: CatalogEntry | undefined, cached: boolean): CachedImage {
  return {
    path,
    id: record.id,
    sourceSha256: record.sourceSha256,
    entry,
    size: record.size,
    diskSignature: record.diskSignature,
    partitions: record.partitions,
    decoder: record.decoder,
    cached,
    record,
  };
}

/** The handle of an image that is complete in the cache. */
export function completeHandle(image: CachedImage): ResolvedImage {
  const ref = { path: image.path, size: image.size };
  return {
    id: image.id,
    entry: image.entry,
    sourceSha256: image.sourceSha256,
    path: image.path,
    size: image.size,
    table: { diskSignature: image.diskSignature, partitions: image.partitions },
    cached: image.cached,
    ref,
    open: () => openImage(ref),
    done: Promise.resolve(image),
  };
}

/** The handle of an image still being written: reads follow the growing file, `done` settles with its end. */
export function growingHandle(
  m: { id: string; entry?: CatalogEntry; sourceSha256: string; growing: GrowingFile; table: ImageTable },
  done: Promise<CachedImage>,
): ResolvedImage {
  const ref = { path: m.growing.finalPath, size: m.growing.size, growing: m.growing };
  done.catch(() => undefined); // a caller that only reads still fails through its reads: no unhandled rejection
  return { id: m.id, entry: m.entry, sourceSha256: m.sourceSha256, path: ref.path, size: ref.size, table: m.table, cached: false, ref, open: () => openImage(ref), done };
}
