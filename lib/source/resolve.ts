// resolveImage: turn "a base image" as a user names it (catalog id or alias, http(s) URL, file:// URL, local path)
// into a verified raw image in the cache, downloading and decompressing only what is not there yet.
// Cache key: the sha256 of the source file (compressed, as published). A pinned catalog hash finds its image with
// no network at all; a finished download's record (verified against SHA256SUMS when it was made) finds it by
// catalog id or URL; a local file is hashed once and remembered by path+size+mtime. The same bytes reached by a
// mirror, a URL or a local copy share one entry, and the key says exactly which published file the image came from.
// What it gives is one handle (image-handle.ts), cached or still being decompressed alike.
import { createHash } from 'node:crypto';
import { existsSync, rmSync, statSync } from 'node:fs';
import { basename, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, NotFoundError, VerifyError, PiImageError, CorruptImageError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { getCatalogEntry, type CatalogEntry } from './catalog.ts';
import { Cache, downloadName } from './cache.ts';
import { download, fetchText, parseSha256Sums, DownloadError } from './download.ts';
import { usesSystemXz, xzUncompressedSize, type XzDecoder } from './decompress.ts';
import { XzTap } from './xz-tap.ts';
import type { DownloadResult } from './download.ts';
import { mirrorFromEnv, mirrorUrls } from './mirror.ts';
import { sha256OfFile } from './hash.ts';
import { decodeToCache, recordImage } from './into-cache.ts';
import { cachedImage, completeHandle, type ResolvedImage } from './image-handle.ts';

export type { ResolvedImage } from './image-handle.ts';

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
   * Decompress an .xz while it downloads only once the download has run this long and has at least this long
   * left (default 0: from the first byte). See XzTap.
   */
  overlapAfterMs?: number;
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

/**
 * Resolve a base image to its handle (see the file header): given as soon as the image can be read, which for a
 * cold `xz -dc` is while it is still being written; `done` is the verified image in the cache.
 */
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
    if (hit) return completeHandle(cachedImage(hit.path, hit.record, entry, true));
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
  const tap = usesSystemXz('xz', opts.xz) ? new XzTap(cache.images, `${dest}.partial`, url, opts.overlapAfterMs ?? 0, onBytes) : undefined;
  let d;
  try {
    d = await download(url, { dest, expectedSha256: expected, onProgress: opts.onProgress, signal: opts.signal, retries: opts.retries, backoffMs: opts.backoffMs, idleTimeoutMs: opts.idleTimeoutMs, detail: name, entryId: entry?.id, tap });
  } catch (err) {
    await tap?.discard();
    throw err;
  }
  // Undecodable bytes that no checksum vouched for are not kept: the next run downloads them again. The decoder
  // may fail before the handle is given or after it (in `done`), while the image is being read.
  const forget = (err: unknown): never => {
    if (err instanceof CorruptImageError && !expected) {
      rmSync(d.path, { force: true });
      rmSync(`${d.path}.json`, { force: true });
    }
    throw err;
  };
  const handle = await decompressDownload(cache, d, tap, url, name, id, entry, opts).catch(forget);
  const done = handle.done.catch(forget);
  done.catch(() => undefined);
  return { ...handle, done };
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
      return completeHandle(cachedImage(cache.imagePath(d.sha256), record, entry, false));
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

/** The handle for a verified source file: its cached image, or decoded into the cache now. */
async function fromSource(cache: Cache, sourcePath: string, sourceSha256: string, id: string, label: string, entry: CatalogEntry | undefined, opts: ResolveOptions): Promise<ResolvedImage> {
  const hit = cache.findImage(sourceSha256);
  if (hit) return completeHandle(cachedImage(hit.path, hit.record, entry, true));
  return decodeToCache(cache, sourcePath, sourceSha256, id, label, entry, opts);
}
