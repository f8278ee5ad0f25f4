// The image cache on disk. Layout under cacheDir():
//   downloads/<key>-<file>            a verified download (compressed, as published), key = sha256(url)[0..16]
//   downloads/<key>-<file>.partial    an interrupted download; .partial.json beside it says from where (resume)
//   downloads/<key>-<file>.json       what a finished download is: url, size, sha256, etag
//   images/<sourceSha256>.img         the raw base image, sparse; named by the sha256 of the file it came from
//   images/<sourceSha256>.json        its record: id, size, partitions, decoder, source
//   sources.json                      local files already seen: path+size+mtime -> sourceSha256 (no re-hash)
// Everything is written under a temporary name and renamed once verified, so a crash never leaves a "valid" entry.
import type { Partition } from '../image/partition-table.ts';
import { mkdirSync, readFileSync, writeFileSync, renameSync, readdirSync, statSync, rmSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { CatalogEntry } from './catalog.ts';

/** The cache directory: `PI_IMAGE_CACHE` > `$XDG_CACHE_HOME/pi-image` > `~/.cache/pi-image`. */
export function cacheDir(override?: string): string {
  if (override) return override;
  if (process.env.PI_IMAGE_CACHE) return process.env.PI_IMAGE_CACHE;
  if (process.env.XDG_CACHE_HOME) return join(process.env.XDG_CACHE_HOME, 'pi-image');
  return join(homedir(), '.cache', 'pi-image');
}

/** One partition (MBR primary or GPT entry) as recorded beside a cached image. */
export type RecordedPartition = Pick<Partition, 'index' | 'type' | 'bootable' | 'startLba' | 'sectors' | 'start' | 'size'>;

/** The record kept beside each cached raw image (images/<sourceSha256>.json). */
export interface ImageRecord {
  /** Catalog id, or the source file's name for URLs and paths. */
  id: string;
  /**
   * sha256 of the file it was decompressed from (the cache key). The raw image itself is not hashed: the source was
   * verified before decoding, the decoder checks what it decodes (xz CRC64 per block, gzip and zip CRC32) and the
   * size is checked against the source's index, so a hash would prove nothing more at creation. At rest, `images
   * verify` decodes the source again and compares (lib/source/verify.ts).
   */
  sourceSha256: string;
  /** Raw image size in bytes. */
  size: number;
  /** Bytes actually written (non-zero 4 KiB blocks): the rest are holes. */
  dataBytes: number;
  format: 'xz' | 'zip' | 'gz' | 'raw';
  /** Which decoder produced it: 'xz' (system xz -dc), 'wasm', 'zlib', 'unzipper', 'copy'. */
  decoder: string;
  /** Where it came from (URL, file:// URL or local path). */
  source: string;
  /** The zip member used, for .zip sources. */
  member?: string;
  diskSignature: number;
  partitions: RecordedPartition[];
  createdAt: string;
}

/** A finished download's record (downloads/<name>.json). */
export interface DownloadRecord {
  url: string;
  size: number;
  sha256: string;
  etag?: string;
  lastModified?: string;
  entryId?: string;
  finishedAt: string;
}

export class Cache {
  readonly dir: string;
  constructor(dir?: string) {
    this.dir = cacheDir(dir);
  }
  get downloads(): string {
    return join(this.dir, 'downloads');
  }
  get images(): string {
    return join(this.dir, 'images');
  }
  ensure(): void {
    mkdirSync(this.downloads, { recursive: true });
    mkdirSync(this.images, { recursive: true });
  }
  imagePath(sourceSha256: string): string {
    return join(this.images, `${sourceSha256}.img`);
  }
  recordPath(sourceSha256: string): string {
    return join(this.images, `${sourceSha256}.json`);
  }

  /** The cached image for a source hash, if both the image and its record are there. */
  findImage(sourceSha256: string): { path: string; record: ImageRecord } | undefined {
    const rec = readJson<ImageRecord>(this.recordPath(sourceSha256));
    const path = this.imagePath(sourceSha256);
    if (!rec || !existsSync(path)) return undefined;
    return { path, record: rec };
  }

  /** Every cached image record. */
  listImages(): { path: string; record: ImageRecord }[] {
    if (!existsSync(this.images)) return [];
    return readdirSync(this.images)
      .filter((f) => /^[0-9a-f]{64}\.json$/.test(f))
      .map((f) => this.findImage(f.slice(0, 64)))
      .filter((x): x is { path: string; record: ImageRecord } => x !== undefined);
  }

  /** Every finished download with its record. */
  listDownloads(): { path: string; record: DownloadRecord }[] {
    if (!existsSync(this.downloads)) return [];
    return readdirSync(this.downloads)
      .filter((f) => f.endsWith('.json') && !f.endsWith('.partial.json'))
      .map((f) => ({ path: join(this.downloads, f.slice(0, -5)), record: readJson<DownloadRecord>(join(this.downloads, f)) }))
      .filter((x): x is { path: string; record: DownloadRecord } => x.record !== undefined && existsSync(x.path));
  }

  /** Local sources seen before: `path|size|mtimeMs` -> sha256, so a path is not re-hashed when unchanged. */
  lookupLocal(path: string): string | undefined {
    return readJson<Record<string, string>>(join(this.dir, 'sources.json'))?.[localKey(path)];
  }
  /** Local files seen before with this sha256 that are still there unchanged (same size and mtime). */
  localPaths(sha256: string): string[] {
    const map = readJson<Record<string, string>>(join(this.dir, 'sources.json')) ?? {};
    return Object.entries(map)
      .filter(([, sha]) => sha === sha256)
      .map(([key]) => key.slice(0, key.lastIndexOf('|', key.lastIndexOf('|') - 1))) // the path of localKey
      .filter((path) => {
        try {
          return this.lookupLocal(path) === sha256;
        } catch {
          return false; // gone
        }
      });
  }
  rememberLocal(path: string, sha256: string): void {
    const file = join(this.dir, 'sources.json');
    const map = readJson<Record<string, string>>(file) ?? {};
    map[localKey(path)] = sha256;
    writeJsonAtomic(file, map);
  }
}

/** A local file's key in sources.json: `path|size|mtimeMs`, so a changed file is not taken for the one seen. */
function localKey(path: string): string {
  const st = statSync(path);
  return `${path}|${st.size}|${st.mtimeMs}`;
}

/** Name of a download in the cache: a short hash of the URL (so two URLs never collide) plus the file name. */
export function downloadName(url: string, file: string, hash: (s: string) => string): string {
  return `${hash(url).slice(0, 16)}-${file.replace(/[^A-Za-z0-9._+-]/g, '_')}`;
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Write JSON under a temporary name and rename it into place. */
export function writeJsonAtomic(path: string, data: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
  renameSync(tmp, path);
}

export interface PruneResult {
  removed: string[];
  freedBytes: number;
}

/**
 * Remove what is not needed: temporary files, interrupted downloads (unless `keepPartial`), orphan records; with
 * `downloads` also the compressed downloads whose image is cached; with `all` everything.
 */
export function pruneCache(opts: { cacheDir?: string; all?: boolean; downloads?: boolean; keepPartial?: boolean; entries?: CatalogEntry[] } = {}): PruneResult {
  const cache = new Cache(opts.cacheDir);
  const removed: string[] = [];
  let freed = 0;
  const drop = (p: string): void => {
    try {
      const st = statSync(p);
      freed += st.blocks * 512;
      rmSync(p, { force: true });
      removed.push(p);
    } catch {
      /* already gone */
    }
  };
  const imageSources = new Set(cache.listImages().map((x) => x.record.sourceSha256));
  for (const dir of [cache.downloads, cache.images]) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (opts.all) drop(p);
      else if (f.includes('.tmp-')) drop(p);
      else if (!opts.keepPartial && (f.endsWith('.partial') || f.endsWith('.partial.json'))) drop(p);
      else if (dir === cache.images && f.endsWith('.img') && !existsSync(p.replace(/\.img$/, '.json'))) drop(p);
      else if (dir === cache.images && /^[0-9a-f]{64}\.json$/.test(f) && !existsSync(p.replace(/\.json$/, '.img'))) drop(p);
      // Files kept beside an image (<sha>.img.<what>: the build's SSD checksums) go with it.
      else if (dir === cache.images && /^[0-9a-f]{64}\.img\./.test(f) && !existsSync(join(dir, f.slice(0, 68)))) drop(p);
      else if (dir === cache.downloads && f.endsWith('.json') && !f.endsWith('.partial.json') && !existsSync(p.slice(0, -5))) drop(p);
    }
  }
  if (opts.downloads && !opts.all) {
    for (const d of cache.listDownloads()) {
      if (imageSources.has(d.record.sha256)) {
        drop(d.path);
        drop(`${d.path}.json`);
      }
    }
  }
  if (opts.all) drop(join(cache.dir, 'sources.json'));
  return { removed, freedBytes: freed };
}
