// File artifacts (binaries, release archives, add-on manifests, members of archives) into the blob store.
// - At lock time: their sha256 is established (a published <url>.sha256 when one exists, else the profile's,
//   else pinned now) and their content checked: an ELF for the image's architecture, a gzip archive, Kubernetes
//   YAML; never an HTML page.
// - At build time: fetched again only when the store lacks them, and verified against the lock.
// Downloads go through lib/source (resumable, verified).
import { createHash } from 'node:crypto';
import { createReadStream, openSync, readSync, writeSync, closeSync, rmSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { parseAllDocuments } from 'yaml';
import { download, fetchText, DownloadError } from '../source/download.ts';
import { NotFoundError, VerifyError, PiImageError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { LockRefusal } from './errors.ts';
import type { LockFile, SumSource } from './lockfile.ts';
import type { BlobStore } from './store.ts';
import { elfArchitecture } from './platform.ts';

export interface FileRequest {
  id: string;
  key: string;
  /** The archive's URL for a member. */
  url: string;
  member?: string;
  kind: LockFile['kind'];
  /** A sha256 the profile pins (of the file, or of the archive for a member). */
  expected?: string;
}

export interface FileContext {
  store: BlobStore;
  /** Debian architecture binaries must be built for. */
  architecture: string;
  retries?: number;
  backoffMs?: number;
  onProgress?: OnProgress;
}

/** `https://…/x.tgz#dir/file.yaml` → archive URL and member. */
export function splitMember(url: string): { url: string; member?: string } {
  const i = url.indexOf('#');
  return i < 0 ? { url } : { url: url.slice(0, i), member: url.slice(i + 1).replace(/^\.\//, '') };
}

const HTML = /^\s*(<!doctype\s+html|<html|<head|<body|<\?xml[^>]*>\s*<html)/i;

function head(path: string, n = 4096): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(n);
    return b.subarray(0, readSync(fd, b, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/** Why the bytes at `path` are not a `kind`, or undefined when they are. */
export function contentProblem(path: string, kind: LockFile['kind'], architecture: string): string | undefined {
  if (kind === 'data') return undefined; // the profile's own files: any bytes
  const h = head(path);
  if (HTML.test(h.toString('latin1'))) return `an HTML page where ${kind === 'manifest' ? 'YAML' : kind === 'binary' ? 'a binary' : 'an archive'} was expected`;
  if (kind === 'binary') {
    const arch = elfArchitecture(h);
    if (!arch) return 'not an ELF binary';
    if (arch !== architecture) return `an ELF binary for ${arch}, the image is ${architecture}`;
  }
  if (kind === 'archive' && !(h[0] === 0x1f && h[1] === 0x8b)) return 'not a gzip archive';
  if (kind === 'manifest') {
    const docs = parseAllDocuments(readFileSync(path, 'utf8'));
    const list = Array.isArray(docs) ? docs : [docs];
    if (list.length === 0) return 'empty: no YAML documents';
    for (const d of list) {
      if (d.errors.length) return `not valid YAML: ${d.errors[0]!.message.split('\n')[0]}`;
      const v = d.toJS() as unknown;
      if (v === null || v === undefined) continue;
      if (typeof v !== 'object' || !('kind' in (v as object))) return 'YAML, but not Kubernetes objects (a document without kind:)';
    }
  }
  return undefined;
}

/** The sha256 published beside `url` (<url>.sha256), or undefined when there is none. */
async function publishedSum(url: string, ctx: FileContext): Promise<string | undefined> {
  let text: string;
  try {
    text = await fetchText(`${url}.sha256`, { retries: ctx.retries ?? 3, backoffMs: ctx.backoffMs });
  } catch (err) {
    if (err instanceof NotFoundError || (err instanceof DownloadError && err.status !== undefined && err.status < 500)) return undefined;
    throw err;
  }
  const m = /^\s*([0-9a-fA-F]{64})(\s|$)/.exec(text);
  return m ? m[1]!.toLowerCase() : undefined;
}

/** Download `url` into the store (verified against `expected` when given); the sha256 and size. */
async function fetchInto(url: string, expected: string | undefined, what: string, key: string, ctx: FileContext): Promise<{ sha256: string; size: number; path: string }> {
  ctx.store.ensure();
  if (expected && ctx.store.has(expected)) return { sha256: expected, size: statSize(ctx.store.path(expected)), path: ctx.store.path(expected) };
  const tmp = join(ctx.store.tmp, createHash('sha256').update(url).digest('hex').slice(0, 16));
  try {
    const r = await download(url, { dest: tmp, expectedSha256: expected, retries: ctx.retries, backoffMs: ctx.backoffMs, onProgress: ctx.onProgress, detail: what });
    rmSync(`${tmp}.json`, { force: true });
    return { sha256: r.sha256, size: r.size, path: ctx.store.adopt(tmp, r.sha256) };
  } catch (err) {
    throw refusal(err, what, url, key);
  }
}

function statSize(path: string): number {
  return statSync(path).size;
}

/** A download error as a one-line refusal naming the artifact, URL and key. */
function refusal(err: unknown, what: string, url: string, key: string): unknown {
  if (err instanceof LockRefusal) return err;
  if (err instanceof NotFoundError) return new LockRefusal(what, url, key, 'HTTP 404: not there (a wrong URL, or the release moved)');
  if (err instanceof VerifyError) return new LockRefusal(what, url, key, `checksum mismatch: ${err.message.replace(/^.*?sha256 mismatch: /, '')}`);
  const msg = (err as Error).message ?? String(err);
  if (/redirect/i.test(msg)) return new LockRefusal(what, url, key, `redirect loop (${msg.replace(/^.*?: /, '')})`);
  if (err instanceof PiImageError) return new LockRefusal(what, url, key, msg.replace(`${url}: `, ''));
  return err;
}

/** Stream `member` out of the gzip'd tar at `archive` into the store; its sha256 and size. */
async function extractMember(archive: string, member: string, what: string, url: string, key: string, ctx: FileContext): Promise<{ sha256: string; size: number; path: string }> {
  ctx.store.ensure();
  const tmp = join(ctx.store.tmp, `member-${process.pid}-${createHash('sha256').update(url + member).digest('hex').slice(0, 12)}`);
  const ex = tar.extract();
  const src = createReadStream(archive);
  const gunzip = createGunzip();
  let found: { sha256: string; size: number } | undefined;
  const failed = new Promise<never>((_, reject) => {
    src.on('error', reject);
    gunzip.on('error', reject);
  });
  failed.catch(() => undefined);
  src.pipe(gunzip).pipe(ex);
  try {
    await Promise.race([
      failed,
      (async () => {
        for await (const entry of ex) {
          const name = entry.header.name.replace(/^\.\//, '');
          if (found || name !== member || entry.header.type !== 'file') {
            entry.resume();
            continue;
          }
          const hash = createHash('sha256');
          let size = 0;
          const fd = openSync(tmp, 'w');
          try {
            for await (const c of entry) {
              const b = c as Buffer;
              hash.update(b);
              size += b.length;
              for (let w = 0; w < b.length; ) w += writeSync(fd, b, w, b.length - w);
            }
          } finally {
            closeSync(fd);
          }
          found = { sha256: hash.digest('hex'), size };
        }
      })(),
    ]);
  } catch (err) {
    src.destroy();
    rmSync(tmp, { force: true });
    throw new LockRefusal(what, url, key, `cannot read the archive: ${(err as Error).message}`);
  }
  if (!found) throw new LockRefusal(what, `${url}#${member}`, key, `the archive has no member ${member}`);
  return { ...found, path: ctx.store.adopt(tmp, found.sha256) };
}

/** Resolve one file request at lock time: download, establish and check its sum, check its content. */
export async function lockFile(req: FileRequest, ctx: FileContext): Promise<LockFile> {
  const what = req.id;
  const full = req.member ? `${req.url}#${req.member}` : req.url;
  let sum: SumSource = 'pinned-at-lock';
  let expected = req.expected;
  if (expected) sum = 'profile';
  else {
    const pub = await publishedSum(req.url, ctx).catch((err) => {
      throw refusal(err, what, `${req.url}.sha256`, req.key);
    });
    if (pub) {
      expected = pub;
      sum = 'published';
    }
  }
  const got = await fetchInto(req.url, expected, what, req.key, ctx);
  if (!req.member) {
    const bad = contentProblem(got.path, req.kind, ctx.architecture);
    if (bad) throw new LockRefusal(what, req.url, req.key, bad);
    return { id: req.id, key: req.key, kind: req.kind, url: req.url, sha256: got.sha256, size: got.size, sum };
  }
  const archiveBad = contentProblem(got.path, 'archive', ctx.architecture);
  if (archiveBad) throw new LockRefusal(what, req.url, req.key, archiveBad);
  const m = await extractMember(got.path, req.member, what, req.url, req.key, ctx);
  const bad = contentProblem(m.path, req.kind, ctx.architecture);
  if (bad) throw new LockRefusal(what, full, req.key, bad);
  return {
    id: req.id,
    key: req.key,
    kind: req.kind,
    url: req.url,
    member: req.member,
    sha256: m.sha256,
    size: m.size,
    sum: 'pinned-at-lock',
    archive: { sha256: got.sha256, size: got.size, sum },
  };
}

/** At build: the locked file's path in the store, fetched (and its member extracted) when missing. */
export async function ensureFile(f: LockFile, ctx: FileContext & { offline?: boolean }): Promise<string> {
  if (ctx.store.has(f.sha256)) return ctx.store.path(f.sha256);
  const full = f.member ? `${f.url}#${f.member}` : f.url;
  if (ctx.offline) throw new LockRefusal(f.id, full, f.key, 'not in the cache and --offline was given', 'run `pi-image build` once without --offline (or `pi-image lock`) to fetch it');
  const archiveSha = f.archive?.sha256 ?? f.sha256;
  const got = await fetchInto(f.url, archiveSha, f.id, f.key, ctx);
  if (!f.member) return got.path;
  const m = await extractMember(got.path, f.member, f.id, f.url, f.key, ctx);
  if (m.sha256 !== f.sha256) throw new LockRefusal(f.id, full, f.key, `checksum mismatch: the member hashes to ${m.sha256}, the lock says ${f.sha256}`);
  return m.path;
}
