// Fetching from an apt archive along the chain of trust: InRelease (its signature checked with keys from the base
// image), then Packages.xz|.gz|plain (its sha256 and size checked against the signed InRelease), then .debs (each
// checked against its Packages sha256). Downloads go through lib/source's verified downloader into the cache.
// Invariants: nothing is parsed before it is verified; the cache only ever holds files whose sha256 matched;
// a cached file is reused only when its record names the expected sha256 and size.
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join, basename } from 'node:path';
import { Cache, readJson, type DownloadRecord } from '../../source/cache.ts';
import { download, fetchText } from '../../source/download.ts';
import { detectFormat, openDecoded, startXz, usesSystemXz, type XzJob } from '../../source/decompress.ts';
import { InputError, VerifyError } from '../../errors.ts';
import type { OnProgress } from '../../progress.ts';
import { verifyClearsigned, type PublicKey } from './keyring.ts';
import { parseRelease, checkRelease, type Release } from './release.ts';
import { distUrl, poolUrl, type AptSource } from './sources.ts';
import type { StanzaStore, Universe } from './universe.ts';
import type { PackagesScanner } from './packages-scan.ts';

export interface ArchiveOptions {
  cacheDir?: string;
  signal?: AbortSignal;
  onProgress?: OnProgress;
  /** The time Valid-Until is checked against (default now). */
  now?: Date;
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Where a verified file with this URL and sha256 lives in the cache (downloads/<key>-<name>). */
function cachePath(cache: Cache, url: string, sha256: string): string {
  return join(cache.downloads, `${sha(`${url}#${sha256}`).slice(0, 16)}-${basename(new URL(url).pathname).replace(/[^A-Za-z0-9._+-]/g, '_')}`);
}

/** A cached verified file for (url, sha256, size), or a fresh verified download of it. */
export async function fetchVerified(url: string, sha256: string, size: number, opts: ArchiveOptions): Promise<string> {
  const cache = new Cache(opts.cacheDir);
  cache.ensure();
  const dest = cachePath(cache, url, sha256);
  const rec = readJson<DownloadRecord>(`${dest}.json`);
  if (rec?.sha256 === sha256 && existsSync(dest) && statSync(dest).size === size) return dest;
  const res = await download(url, { dest, expectedSha256: sha256, signal: opts.signal, onProgress: opts.onProgress, retries: 3, backoffMs: 500 });
  if (res.size !== size) throw new VerifyError(`${url}: ${res.size} bytes where the index says ${size}`);
  return dest;
}

/** Fetch a source's InRelease, verify it with `keys`, and parse it. */
export async function fetchRelease(src: AptSource, keys: PublicKey[], opts: ArchiveOptions): Promise<Release> {
  const url = distUrl(src, 'InRelease');
  const text = await fetchText(url, { signal: opts.signal, retries: 2, backoffMs: 500 });
  const signed = await verifyClearsigned(text, keys, url);
  const r = parseRelease(signed, url);
  if (!src.suite.endsWith('/')) checkRelease(r, src.suite, url, opts.now ?? new Date());
  return r;
}

/** The index path (under dists/<suite>/) of a component's Packages for an architecture; flat repositories have one. */
export function packagesPath(src: AptSource, component: string | undefined, arch: string): string {
  return component === undefined ? 'Packages' : `${component}/binary-${arch}/Packages`;
}

/**
 * Fetch one Packages index named in the verified `release` (xz, then gz, then plain, whichever it lists), check it
 * and add its stanzas to `universe`. Returns the URL read.
 */
export async function loadPackagesIndex(src: AptSource, release: Release, component: string | undefined, universe: Universe, opts: ArchiveOptions): Promise<string> {
  const base = packagesPath(src, component, universe.architecture);
  const inRelease = distUrl(src, 'InRelease');
  const pick = ['.xz', '.gz', ''].map((ext) => base + ext).find((p) => release.files.has(p));
  if (!pick) {
    throw new InputError(
      `${inRelease}: lists no ${base}(.xz|.gz) in its SHA256 sums`,
      `The suite has no component "${component}" for ${universe.architecture}; fix the image's apt sources or apt.mirror.`,
    );
  }
  const f = release.files.get(pick)!;
  const url = distUrl(src, pick);
  const path = await fetchVerified(url, f.sha256, f.size, opts);
  await readPackagesFile(path, src, universe, url);
  return url;
}

/** A private temporary directory, removed at once (the open file descriptors keep their files' bytes). */
function privateTemp(): { path: string; drop: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pi-image-packages-'));
  return { path: join(dir, 'Packages'), drop: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A decompressed index in a file (an unlinked temporary one, or a plain Packages in the cache): read by offset. */
class FileStore implements StanzaStore {
  private fd: number | undefined;
  size = 0;
  constructor(fd: number) {
    this.fd = fd;
  }
  append(b: Buffer): void {
    let w = 0;
    while (w < b.length) w += writeSync(this.fd!, b, w, b.length - w, this.size + w);
    this.size += b.length;
  }
  read(offset: number, length: number, into?: Buffer): Buffer {
    const out = into ?? Buffer.alloc(length);
    let r = 0;
    while (r < length) {
      const n = readSync(this.fd!, out, r, length - r, offset + r);
      if (n === 0) break;
      r += n;
    }
    return out.subarray(0, r);
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The buffer the file paths read through: one, reused (chunks of a stream would each be a new allocation). */
const READ_SIZE = 1 << 20;

/** Feed a file to `scan` from `pos` on, through one buffer, until a read returns nothing; returns the end. */
function scanFile(store: FileStore, buf: Buffer, scan: PackagesScanner, pos: number): number {
  for (;;) {
    const got = store.read(pos, buf.length, buf);
    if (got.length === 0) return pos;
    scan.push(got);
    pos += got.length;
  }
}

/**
 * Stream a (compressed or plain) Packages file on disk into `universe`; the stanzas are read back later from a
 * file (released by universe.close()). A plain file is scanned where it is. An .xz goes through the system's
 * `xz -dc` into an unlinked temporary file that is scanned behind xz as it grows (the bytes never pass through a
 * pipe or a stream's chunks: one buffer is reused); otherwise (.gz, or no xz) the decoded stream is written to
 * such a file and scanned as it comes.
 */
export async function readPackagesFile(path: string, src: Pick<AptSource, 'uri' | 'suite'>, universe: Universe, where = path): Promise<void> {
  const origin = { uri: src.uri, suite: src.suite, flat: src.suite.endsWith('/') };
  const format = detectFormat(path);
  if (format === 'raw') {
    const store = new FileStore(openSync(path, 'r'));
    const scan = universe.parser(origin, where, store);
    scanFile(store, Buffer.allocUnsafe(READ_SIZE), scan, 0);
    scan.end();
    return;
  }
  const tmp = privateTemp();
  if (usesSystemXz(format)) {
    let job: XzJob;
    let store: FileStore;
    try {
      // One thread: Debian's index is two 24 MiB blocks, and decoding both at once takes xz from 20 MB to 72 MB.
      job = startXz(tmp.path, { input: path, name: where, threads: false });
      store = new FileStore(openSync(tmp.path, 'r'));
    } finally {
      tmp.drop();
    }
    const scan = universe.parser(origin, where, store);
    let exited = false;
    job.result.then(
      () => (exited = true),
      () => (exited = true),
    );
    const buf = Buffer.allocUnsafe(READ_SIZE);
    try {
      let pos = 0;
      for (;;) {
        const last = exited; // read after xz has exited: this pass sees every byte it wrote
        pos = scanFile(store, buf, scan, pos);
        if (last) break;
        await new Promise((r) => setTimeout(r, 4));
      }
      scan.end();
    } catch (err) {
      await job.result; // xz's own failure (damaged data), once it has seen the rest, explains a scan error better
      throw err;
    }
    await job.result;
    return;
  }
  const decoded = await openDecoded(path, format, { name: where });
  let store: FileStore;
  try {
    store = new FileStore(openSync(tmp.path, 'w+', 0o600));
  } finally {
    tmp.drop();
  }
  const scan = universe.parser(origin, where, store);
  for await (const chunk of decoded.stream) {
    store.append(chunk as Buffer);
    scan.push(chunk as Buffer);
  }
  await decoded.finished();
  scan.end();
}

/** The URL of a package version's .deb. */
export function debUrl(origin: { uri: string; suite: string }, filename: string): string {
  return poolUrl(origin, filename);
}
