// Image sources: the catalog, verified resumable downloads, decompression and the cache of raw base images.
export { resolveImage, classifySource, type ResolveOptions, type SourceKind } from './resolve.ts';
export { decompressInto } from './into-cache.ts';
export { openImage, type ResolvedImage, type CachedImage, type ImageRef, type ImageReader, type ImageTable } from './image-handle.ts';
export { listCatalog, findCatalogEntry, getCatalogEntry, parseCatalogEntry, defaultCatalogDir, releaseFacts, DEFAULT_BOOT, type CatalogEntry, type BootSpec, type ReleaseFacts } from './catalog.ts';
export { cacheDir, Cache, pruneCache, type ImageRecord, type DownloadRecord, type RecordedPartition, type PruneResult } from './cache.ts';
export { download, fetchText, parseSha256Sums, DownloadError, type DownloadOptions, type DownloadResult } from './download.ts';
export { detectFormat, openDecoded, hasSystemXz, isSafeMemberName, type SourceFormat, type XzDecoder } from './decompress.ts';
export { applyMirror, mirrorUrls, mirrorFromEnv } from './mirror.ts';
export { verifyCache, type VerifyItem } from './verify.ts';
