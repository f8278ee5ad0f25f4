// resolveImage: turn "a base image" as a user names it (catalog id or alias, http(s) URL, file:// URL, local path)
// into a verified raw image in the cache, downloading and decompressing only what is not there yet.
// Cache key: the sha256 of the source file (compressed, as published). A pinned catalog hash finds its image with
// no network at all; a finished download's record (verified against SHA256SUMS when it was made) finds it by
// catalog id or URL; a local file is hashed once and remembered by path+size+mtime. The same bytes reached by a
// mirror, a URL or a local copy share one entry, and the key says exactly which published file the image came from.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, rmSync, statSync, renameSync } from 'node:fs';
import { basename, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, NotFoundError, VerifyError, PiImageError, CorruptImageError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { FileIO } from '../image/io.ts';
import { growingFile, settleGrowing, DONE, FAILED, type GrowingFile } from '../image/growing-io.ts';
import { getCatalogEntry, type CatalogEntry } from './catalog.ts';
import { Cache, downloadName, writeJsonAtomic, type ImageRecord, type RecordedPartition } from './cache.ts';
import { download, fetchText, parseSha256Sums, DownloadError } from './download.ts';
import { detectFormat, openDecoded, usesSystemXz, xzToFile, xzUncompressedSize, type XzDecoder } from './decompress.ts';
import { XzTap } from './xz-tap.ts';
import type { DownloadTap, DownloadResult } from './download.ts';
import { mirrorFromEnv, mirrorUrls } from './mirror.ts';
import { SparseWriter } from './sparse-writer.ts';
import { sha256OfFile } from './hash.ts';
import { validateImage } from './validate.ts';

export interface ResolveOptions {
  cacheDir?: string;
  /** Mirror base URL (else PI_IMAGE_MIRROR): catalog URLs are rewritten onto it and only it is asked. */
  mirror?: string;
  onProgress?: OnProgress;
  catalogDir?: string;
  signal?: AbortSignal;
  /** xz decoder: system `xz`, the WASM one, or auto (system when present; also PI_IMAGE_XZ). */
  xz?: XzDecoder;
  /** Expected sha256 of the source file for URLs and paths (catalog entries carry their own). */
  sha256?: string;
  /** Download tuning (tests). */
  retries?: number;
  backoffMs?: number;
  idleTimeoutMs?: number;
  /**
   * Called when a raw image starts being written by `xz -dc` into the cache (its final size known from the xz
   * index): a consumer may read it while it grows (lib/image/growing-io.ts). The file is settled DONE or FAILED.
   */
  onRawImageStart?: (file: GrowingFile) => void;
  /**
   * Decompress an .xz while it downloads only once the download has run this long and has at least this long
   * left (default 1000 ms; 0 = from the first byte). See XzTap.
   */
  overlapAfterMs?: number;
}

export interface ResolvedImage {
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

/** Where a source name points. */
export type SourceKind = { kind: 'catalog'; entry: CatalogEntry } | { kind: 'url'; url: string } | { kind: 'file'; path: string };

export function classifySource(src: string, catalogDir?: string): SourceKind {
  if (/^https?:\/\//i.test(src)) return { kind: 'url', url: src };
  if (/^file:\/\//i.test(src)) return { kind: 'file', path: fileURLToPath(src) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(src)) throw new InputError(`image source ${src}: unsupported URL scheme (use http, https or file)`);
  if (existsSync(src)) return { kind: 'file', path: resolvePath(src) };
  if (src.includes('/') || /\.(img|xz|zip|gz)$/i.test(src)) throw new NotFoundError(`image file ${src}: no such file`);
  return { kind: 'catalog', entry: getCatalogEntry(src, catalogDir) };
}

/** Resolve a base image to a verified raw image in the cache (see the file header). */
export async function resolveImage(src: string, opts: ResolveOptions = {}): Promise<ResolvedImage> {
  const cache = new Cache(opts.cacheDir);
  cache.ensure();
  const source = classifySource(src, opts.catalogDir);
  const progress = opts.onProgress;

  if (source.kind === 'file') {
    if (!statSync(source.path).isFile()) throw new InputError(`image source ${source.path}: not a regular file`);
    const sha = cache.lookupLocal(source.path) ?? (await hashFile(source.path, progress));
    cache.rememberLocal(source.path, sha);
    if (opts.sha256 && opts.sha256 !== sha) {
      throw new VerifyError(`${source.path}: sha256 mismatch: expected ${opts.sha256}, got ${sha}`);
    }
    return fromSource(cache, source.path, sha, basename(source.path), source.path, undefined, opts);
  }

  if (source.kind === 'url') {
    const name = basename(new URL(source.url).pathname) || 'image';
    const prior = cache.listDownloads().find((d) => d.record.url === source.url && (!opts.sha256 || d.record.sha256 === opts.sha256));
    if (prior) return fromSource(cache, prior.path, prior.record.sha256, name, source.url, undefined, opts);
    const dest = `${cache.downloads}/${downloadName(source.url, name, sha256Text)}`;
    return downloadAndDecompress(cache, source.url, dest, name, name, undefined, opts.sha256, opts);
  }

  // A catalog entry: reuse what the cache has, else try its URLs (or the mirror's) in order.
  const entry = source.entry;
  if (entry.sha256) {
    const hit = cache.findImage(entry.sha256);
    if (hit) return done(hit.path, hit.record, entry, true);
  }
  const prior = cache.listDownloads().find((d) => (entry.sha256 ? d.record.sha256 === entry.sha256 : d.record.entryId === entry.id));
  if (prior) return fromSource(cache, prior.path, prior.record.sha256, entry.id, prior.record.url, entry, opts);

  const urls = mirrorUrls(entry.urls, mirrorFromEnv(opts.mirror));
  const failures: PiImageError[] = [];
  for (const url of urls) {
    opts.signal?.throwIfAborted();
    try {
      const expected = entry.sha256 ?? (await publishedSha256(entry, url, opts.signal));
      if (url.startsWith('file:')) {
        const path = fileURLToPath(url);
        if (!existsSync(path)) throw new NotFoundError(`${url}: no such file`);
        const sha = await hashFile(path, progress);
        if (sha !== expected) throw new VerifyError(`${url}: sha256 mismatch: expected ${expected}, got ${sha}`);
        return fromSource(cache, path, sha, entry.id, url, entry, opts);
      }
      const dest = `${cache.downloads}/${downloadName(url, entry.file, sha256Text)}`;
      return await downloadAndDecompress(cache, url, dest, entry.file, entry.id, entry, expected, opts);
    } catch (err) {
      // A missing file or a dead host moves on to the next URL; a checksum mismatch or bad data stops here.
      if (err instanceof VerifyError || opts.signal?.aborted || !(err instanceof PiImageError) || err.code === 'CORRUPT' || err.code === 'INPUT') throw err;
      failures.push(err);
      if (!(err instanceof DownloadError && err.unreachable)) {
        progress?.({ phase: 'download', done: 0, detail: `${entry.file}: ${err.message}; trying the next URL` });
      }
    }
  }
  throw noUrlWorked(entry, failures);
}

/**
 * The one error for a catalog image none of whose URLs worked. When no host could be reached at all (no network,
 * DNS, nothing listening) it says so in one line and the hint names the ways to build without a network.
 */
function noUrlWorked(entry: CatalogEntry, failures: PiImageError[]): PiImageError {
  const unreachable = failures.map((f) => (f instanceof DownloadError ? f.unreachable : undefined));
  if (failures.length > 0 && unreachable.every((u) => u !== undefined)) {
    const hosts = (kind: string): string[] => [...new Set(unreachable.filter((u) => u!.kind === kind).map((u) => u!.host))];
    const why = [
      hosts('dns').length ? `no network or DNS failure (cannot resolve ${hosts('dns').join(', ')})` : '',
      hosts('refused').length ? `nothing answers at ${hosts('refused').join(', ')} (connection refused)` : '',
      hosts('unreachable').length ? `no network (${hosts('unreachable').join(', ')} unreachable)` : '',
    ].filter(Boolean);
    return new PiImageError(
      'NETWORK',
      `catalog image ${entry.id}: cannot download it: ${why.join('; ')}`,
      `Without a network: use a mirror (--mirror URL or PI_IMAGE_MIRROR), a copy of the image (--image PATH|URL), or run \`pi-image images fetch ${entry.id}\` where there is one.`,
    );
  }
  // One line whatever the number of URLs: each failure's own words, side by side.
  return new NotFoundError(`catalog image ${entry.id}: no URL worked: ${failures.map((f) => f.message).join('; ')}`);
}

/** Download `url` (verified) and get its raw image: decompressed during the download for .xz, else after it. */
async function downloadAndDecompress(cache: Cache, url: string, dest: string, name: string, id: string, entry: CatalogEntry | undefined, expected: string | undefined, opts: ResolveOptions): Promise<ResolvedImage> {
  const report = opts.onProgress;
  const onBytes = report && ((n: number): void => report({ phase: 'decompress', done: n, unit: 'bytes', detail: `${name} via xz -dc (while downloading)` }));
  const tap = usesSystemXz('xz', opts.xz) ? new XzTap(cache.images, `${dest}.partial`, url, opts.overlapAfterMs ?? 1000, onBytes) : undefined;
  let d;
  try {
    d = await download(url, { dest, expectedSha256: expected, onProgress: opts.onProgress, signal: opts.signal, retries: opts.retries, backoffMs: opts.backoffMs, idleTimeoutMs: opts.idleTimeoutMs, detail: name, entryId: entry?.id, tap });
  } catch (err) {
    await tap?.discard();
    throw err;
  }
  try {
    return await decompressDownload(cache, d, tap, url, name, id, entry, opts);
  } catch (err) {
    // Undecodable bytes that no checksum vouched for are not kept: the next run downloads them again.
    if (err instanceof CorruptImageError && !expected) {
      rmSync(d.path, { force: true });
      rmSync(`${d.path}.json`, { force: true });
    }
    throw err;
  }
}

/** The raw image of a finished download: the tap's output when it decoded the whole file, else decompressed now. */
async function decompressDownload(cache: Cache, d: DownloadResult, tap: XzTap | undefined, url: string, name: string, id: string, entry: CatalogEntry | undefined, opts: ResolveOptions): Promise<ResolvedImage> {
  const hit = cache.findImage(d.sha256);
  if (tap?.job && !tap.disabled && !hit) {
    try {
      const total = xzUncompressedSize(d.path);
      const out = await tap.finish();
      opts.onProgress?.({ phase: 'decompress', done: out.size, total: total ?? out.size, unit: 'bytes', detail: `${name} via xz -dc (while downloading)` });
      if (total !== undefined && out.size !== total) throw new VerifyError(`${url}: decompressed to ${out.size} bytes, its index says ${total}`);
      const record = recordImage(cache, tap.tmp, out, { id, sourceSha256: d.sha256, format: 'xz', decoder: 'xz', label: url });
      return done(cache.imagePath(d.sha256), record, entry, false);
    } catch (err) {
      await tap.discard();
      throw err;
    }
  }
  await tap?.discard();
  return fromSource(cache, d.path, d.sha256, id, url, entry, opts);
}

/** The sha256 of `entry.file` from the SHA256SUMS published beside `url` (or at the entry's absolute URL). */
async function publishedSha256(entry: CatalogEntry, url: string, signal?: AbortSignal): Promise<string> {
  const sumsUrl = new URL(entry.sha256sumsUrl ?? 'SHA256SUMS', url).toString();
  const sums = parseSha256Sums(await fetchText(sumsUrl, { signal }));
  const hex = sums.get(entry.file);
  if (!hex) throw new VerifyError(`${sumsUrl}: has no line for ${entry.file}, so it cannot be verified`, 'Pin sha256 in the catalog entry, or check the mirror.');
  return hex;
}

function sha256Text(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function hashFile(path: string, onProgress?: OnProgress): Promise<string> {
  return sha256OfFile(path, onProgress, 'hash');
}

function done(path: string, record: ImageRecord, entry: CatalogEntry | undefined, cached: boolean): ResolvedImage {
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

/** The cached image for a verified source file, decompressing it (once) when missing. */
async function fromSource(cache: Cache, sourcePath: string, sourceSha256: string, id: string, label: string, entry: CatalogEntry | undefined, opts: ResolveOptions): Promise<ResolvedImage> {
  const hit = cache.findImage(sourceSha256);
  if (hit) return done(hit.path, hit.record, entry, true);
  const record = await decompressInto(cache, sourcePath, sourceSha256, id, label, opts);
  return done(cache.imagePath(sourceSha256), record, entry, false);
}

/** Decompress a source into the cache: temp name, sparse, partition table read, then renamed into place. */
export async function decompressInto(cache: Cache, sourcePath: string, sourceSha256: string, id: string, label: string, opts: ResolveOptions = {}): Promise<ImageRecord> {
  const format = detectFormat(sourcePath);
  const final = cache.imagePath(sourceSha256);
  const tmp = `${final}.tmp-${process.pid}`;
  // Errors name the source as the user gave it (path or URL), progress its file name: never the cache's names.
  const short = basename(label.replace(/[?#].*$/, '')) || id;
  let writer: SparseWriter | undefined;
  let growing: GrowingFile | undefined;
  try {
    let out: { size: number; dataBytes: number };
    let decoder: string;
    let member: string | undefined;
    if (usesSystemXz(format, opts.xz)) {
      decoder = 'xz';
      const total = xzUncompressedSize(sourcePath);
      const detail = `${short} via xz -dc`;
      opts.onProgress?.({ phase: 'decompress', done: 0, total, unit: 'bytes', detail });
      if (total !== undefined && opts.onRawImageStart) {
        // The file exists before anyone is told of it; the callback must not block (xz starts right after it).
        closeSync(openSync(tmp, 'w', 0o644));
        growing = growingFile(tmp, final, total);
        opts.onRawImageStart(growing);
      }
      const report = opts.onProgress;
      out = await xzToFile(sourcePath, tmp, {
        name: label,
        signal: opts.signal,
        onBytes: report && ((n) => (total === undefined || n < total) && report({ phase: 'decompress', done: n, total, unit: 'bytes', detail })),
      });
      if (total !== undefined && out.size !== total) throw new VerifyError(`${label}: decompressed to ${out.size} bytes, its index says ${total}`);
    } else {
      const decoded = await openDecoded(sourcePath, format, { xz: opts.xz, signal: opts.signal, name: label });
      decoder = decoded.decoder;
      member = decoded.member;
      const detail = `${short} via ${decoded.decoder === 'wasm' ? 'WASM xz decoder' : decoded.decoder}`;
      writer = new SparseWriter(tmp);
      let last = 0;
      opts.onProgress?.({ phase: 'decompress', done: 0, total: decoded.expectedSize, unit: 'bytes', detail });
      for await (const chunk of decoded.stream) {
        writer.write(chunk);
        if (opts.onProgress && Date.now() - last > 200) {
          last = Date.now();
          opts.onProgress({ phase: 'decompress', done: writer.size, total: decoded.expectedSize, unit: 'bytes', detail });
        }
      }
      await decoded.finished();
      out = writer.finish();
      if (decoded.expectedSize !== undefined && out.size !== decoded.expectedSize) {
        throw new VerifyError(`${label}: decompressed to ${out.size} bytes, expected ${decoded.expectedSize}`);
      }
    }
    opts.onProgress?.({ phase: 'decompress', done: out.size, total: out.size, unit: 'bytes', detail: `${short} via ${decoder === 'xz' ? 'xz -dc' : decoder === 'wasm' ? 'WASM xz decoder' : decoder}` });
    const record = recordImage(cache, tmp, out, { id, sourceSha256, format, decoder, label, member });
    if (growing) settleGrowing(growing, DONE);
    return record;
  } catch (err) {
    if (growing) settleGrowing(growing, FAILED);
    writer?.abort();
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Read the partition table of a finished temp image, write its record, and rename both into place. */
function recordImage(
  cache: Cache,
  tmp: string,
  out: { size: number; dataBytes: number },
  m: { id: string; sourceSha256: string; format: ImageRecord['format']; decoder: string; label: string; member?: string },
): ImageRecord {
  const { id, sourceSha256, format, decoder, label, member } = m;
  try {
    // Checked before it is named as a cache entry: a table or filesystem that lib/image would refuse later keeps
    // it out, and the error names the image as the user gave it (`label`), not this temp file.
    const io = FileIO.open(tmp);
    let mbr;
    try {
      mbr = validateImage(io, label);
    } finally {
      io.close();
    }
    const record: ImageRecord = {
      id,
      sourceSha256,
      size: out.size,
      dataBytes: out.dataBytes,
      format,
      decoder,
      source: label,
      ...(member ? { member } : {}),
      diskSignature: mbr.diskSignature,
      partitions: mbr.partitions.map((p) => ({ index: p.index, type: p.type, bootable: p.bootable, startLba: p.startLba, sectors: p.sectors, start: p.start, size: p.size })),
      createdAt: new Date().toISOString(),
    };
    renameSync(tmp, cache.imagePath(sourceSha256));
    writeJsonAtomic(cache.recordPath(sourceSha256), record);
    return record;
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
