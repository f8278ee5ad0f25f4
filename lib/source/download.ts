// Verified, resumable HTTP downloads with node-fetch.
// - The body streams into `<dest>.partial` while a sha256 runs over it.
// - An interruption (reset, timeout, 5xx, a killed process) resumes with `Range` from the bytes on disk, re-hashed
//   first when resuming in a new run; `If-Range` makes a changed file restart from zero.
// - Not retried: a failure asking again cannot fix (4xx, a redirect loop, Content-Encoding, an HTML page), and a
//   host that cannot be reached (DNS, refused) before any byte came.
// Invariants:
// - Only a download whose sha256 matches is renamed to `<dest>`; a mismatch deletes the bytes and names both hashes.
// - A `.partial` stays after a failure only when a resume can use it (bytes on disk, Range honoured), and only
//   then does the error say to run again.
import { createHash, type Hash } from 'node:crypto';
import { openSync, closeSync, writeSync, ftruncateSync, fstatSync, renameSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import fetch, { type Response } from 'node-fetch';
import { PiImageError, NotFoundError, VerifyError, DownloadError, type Unreachable } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { hashInto } from './hash.ts';
import { readJson, writeJsonAtomic, type DownloadRecord } from './cache.ts';

export { DownloadError, type Unreachable } from '../errors.ts';

export interface DownloadOptions {
  /** The final path; bytes go to `<dest>.partial` until verified. */
  dest: string;
  /** Pinned sha256 of the file: a mismatch is a VerifyError and nothing is kept. */
  expectedSha256?: string;
  onProgress?: OnProgress;
  signal?: AbortSignal;
  /** Attempts without progress before giving up (default 5). */
  retries?: number;
  /** First backoff delay; doubles each time, capped at 30 s (default $PI_IMAGE_BACKOFF_MS, else 1000 ms). */
  backoffMs?: number;
  /** No bytes for this long aborts the attempt and retries (default 30 s). */
  idleTimeoutMs?: number;
  /** Progress detail (file name). */
  detail?: string;
  /** Catalog id, stored in the record. */
  entryId?: string;
  /** Sees the file's bytes in order from byte 0 as they arrive (to decompress while downloading). */
  tap?: DownloadTap;
}

/** A consumer of the bytes while they download; only used when the download starts from byte 0. */
export interface DownloadTap {
  /**
   * The next bytes of the file, already written to the `.partial` file; `total` is the announced size when known.
   * A returned promise holds the download back (backpressure).
   */
  data(chunk: Buffer, total?: number): void | Promise<void>;
  /** The bytes given so far are void (the download restarted): stop consuming. */
  reset(): void;
}

export interface DownloadResult {
  path: string;
  sha256: string;
  size: number;
  /** Bytes already on disk from an earlier attempt or run when this call started. */
  resumedFrom: number;
  /** Bytes received over the network by this call. */
  bytesFetched: number;
  etag?: string;
}

interface PartialMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
  /** false once the server answered a Range request with the whole file: its bytes on disk cannot be resumed. */
  ranges?: boolean;
}

const USER_AGENT = 'pi-image (+https://github.com/pi-image)';

/** Hash the first `length` bytes of a file (resuming: what an earlier run wrote). */
async function hashPrefix(path: string, length: number, hash: Hash): Promise<void> {
  if (length > 0) await hashInto(hash, path, { length });
}

/** The first retry delay: PI_IMAGE_BACKOFF_MS when set (a slow link, or tests of the CLI), else 1 s. */
function defaultBackoff(): number {
  const ms = Number(process.env.PI_IMAGE_BACKOFF_MS);
  return Number.isFinite(ms) && ms >= 0 && process.env.PI_IMAGE_BACKOFF_MS !== '' ? ms : 1000;
}


/** Download `url` to `opts.dest` (resuming a `.partial` left by an earlier attempt), verifying the sha256. */
export async function download(url: string, opts: DownloadOptions): Promise<DownloadResult> {
  const partial = `${opts.dest}.partial`;
  const metaPath = `${partial}.json`;
  const retries = opts.retries ?? 5;
  const backoff = opts.backoffMs ?? defaultBackoff();
  const idle = opts.idleTimeoutMs ?? 30_000;
  const detail = opts.detail ?? url.split('/').pop();

  let meta = readJson<PartialMeta>(metaPath);
  if (!meta || meta.url !== url || !existsSync(partial)) {
    rmSync(partial, { force: true });
    meta = { url };
  }
  const fd = openSync(partial, 'a+');
  let offset = fstatSync(fd).size;
  let hash = createHash('sha256');
  let fetched = 0;
  let restartedOnce = false;
  let tap = offset === 0 ? opts.tap : undefined;
  if (!tap) opts.tap?.reset();
  try {
    await hashPrefix(partial, offset, hash);
    const resumedFrom = offset;
    let failures = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      const before = offset;
      let done = false;
      try {
        done = await attempt();
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? err;
        // Only a DownloadError may be worth another request; any other typed error (404, a failed write) is final.
        if ((err instanceof PiImageError && !(err instanceof DownloadError)) || (err instanceof DownloadError && err.permanent)) throw err;
        // A host that cannot be reached before any byte came is not retried (no network: fail now, say so).
        if (err instanceof DownloadError && err.unreachable && fetched === 0) throw err;
        if (offset > before) failures = 0;
        else failures++;
        const why = err instanceof DownloadError ? err.detail : (err as Error).message;
        if (failures > retries) {
          const d = err instanceof DownloadError ? err : undefined;
          throw new DownloadError(url, `${why} (gave up after ${retries + 1} attempts without progress)`, { status: d?.status, unreachable: d?.unreachable });
        }
        const wait = offset > before ? backoff / 4 : Math.min(30_000, backoff * 2 ** (failures - 1));
        opts.onProgress?.({ phase: 'download', done: offset, total: meta.total, detail: `${detail} (retrying in ${Math.round(wait)} ms: ${why})` });
        await sleep(wait, undefined, { signal: opts.signal });
        continue;
      }
      if (!done) continue;
      const sha256 = hash.digest('hex');
      if (opts.expectedSha256 && sha256 !== opts.expectedSha256) {
        if (resumedFrom > 0 && !restartedOnce) {
          // The bytes from the earlier run may belong to an older file: fetch it whole once before failing.
          restartedOnce = true;
          restart();
          continue;
        }
        ftruncateSync(fd, 0);
        rmSync(partial, { force: true });
        rmSync(metaPath, { force: true });
        throw new VerifyError(
          `${url}: sha256 mismatch: expected ${opts.expectedSha256}, got ${sha256} (${offset} bytes); the file was deleted`,
          'The download is corrupt or the mirror serves a different file; try again or another --mirror.',
        );
      }
      closeSync(fd);
      renameSync(partial, opts.dest);
      const record: DownloadRecord = { url, size: offset, sha256, etag: meta.etag, lastModified: meta.lastModified, entryId: opts.entryId, finishedAt: new Date().toISOString() };
      writeJsonAtomic(`${opts.dest}.json`, record);
      rmSync(metaPath, { force: true });
      return { path: opts.dest, sha256, size: offset, resumedFrom, bytesFetched: fetched, etag: meta.etag };
    }
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* closed on success */
    }
    throw leaveResumable(err);
  }

  /**
   * After a failure: keep the `.partial` only when a later run can resume from its bytes (it has some, the
   * server honours Range, and asking again can help); else delete it and its record, and say nothing of resuming.
   */
  function leaveResumable(err: unknown): unknown {
    const permanent = err instanceof NotFoundError || err instanceof VerifyError || (err instanceof DownloadError && err.permanent);
    const keep = offset > 0 && meta?.ranges !== false && !permanent;
    if (!keep) {
      rmSync(partial, { force: true });
      rmSync(metaPath, { force: true });
      return err;
    }
    if (err instanceof DownloadError) {
      return new DownloadError(url, err.detail, { status: err.status, unreachable: err.unreachable, hint: `${offset} bytes are kept in ${partial}: run the same command again to resume.` });
    }
    return err;
  }

  /** Throw away the bytes on disk and start again from zero. */
  function restart(): void {
    tap?.reset();
    tap = undefined;
    ftruncateSync(fd, 0);
    offset = 0;
    hash = createHash('sha256');
    meta = { url };
  }

  /** One HTTP request; true when the whole file is on disk. */
  async function attempt(): Promise<boolean> {
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => ctl.abort(new DownloadError(url, `no data for ${idle / 1000} s`)), idle);
    };
    try {
      const headers: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': USER_AGENT };
      if (offset > 0) {
        headers.Range = `bytes=${offset}-`;
        const validator = meta!.etag && !meta!.etag.startsWith('W/') ? meta!.etag : meta!.lastModified;
        if (validator) headers['If-Range'] = validator;
      }
      arm();
      let res: Response;
      try {
        res = await fetch(url, { headers, signal: ctl.signal, compress: false, redirect: 'follow', follow: MAX_REDIRECTS });
      } catch (err) {
        throw requestFailed(url, reason(ctl, err));
      }
      if (res.status === 404 || res.status === 410) {
        throw new NotFoundError(`${url}: HTTP ${res.status} ${res.statusText}: the file is not there (wrong URL, or the release moved)`);
      }
      if (res.status === 416 && offset > 0) {
        // Range not satisfiable: either we already have it all, or the file shrank. Check by length.
        const total = Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
        await res.arrayBuffer().catch(() => undefined);
        if (total === offset) return true;
        restart();
        return false;
      }
      if (res.status !== 200 && res.status !== 206) {
        await res.arrayBuffer().catch(() => undefined);
        throw new DownloadError(url, `HTTP ${res.status} ${res.statusText}`, { status: res.status });
      }
      const acceptRanges = res.headers.get('accept-ranges');
      if (res.status === 200 && offset > 0) {
        // The server ignored Range, or If-Range said the file changed: start from zero. Ignored it is when the
        // server does not offer ranges or the file is the one asked for (same validator): no resume from it later.
        const same = headers['If-Range'] !== undefined && [res.headers.get('etag'), res.headers.get('last-modified')].includes(headers['If-Range']);
        restart();
        if (!/\bbytes\b/i.test(acceptRanges ?? '') || same) meta!.ranges = false;
      }
      if (res.status === 200 && /^\s*none\s*$/i.test(acceptRanges ?? '')) meta!.ranges = false;
      if (res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
        if (!m || Number(m[1]) !== offset) {
          await res.arrayBuffer().catch(() => undefined);
          restart();
          return false;
        }
        if (m[3] !== '*') meta!.total = Number(m[3]);
      } else {
        const len = res.headers.get('content-length');
        meta!.total = len !== null ? Number(len) : undefined;
        meta!.etag = res.headers.get('etag') ?? undefined;
        meta!.lastModified = res.headers.get('last-modified') ?? undefined;
      }
      const encoding = res.headers.get('content-encoding');
      if (encoding && encoding !== 'identity') {
        await res.arrayBuffer().catch(() => undefined);
        throw new DownloadError(url, `the server sent the file with Content-Encoding: ${encoding} although asked for identity (a misconfigured server or proxy)`, { permanent: true, hint: 'Use another mirror or URL.' });
      }
      if (/^\s*text\/html\b/i.test(res.headers.get('content-type') ?? '')) {
        await res.arrayBuffer().catch(() => undefined);
        throw htmlPage(url);
      }
      writeJsonAtomic(metaPath, meta);
      const body = res.body;
      if (!body) throw new DownloadError(url, 'empty response body');
      let lastReport = 0;
      let reading = true; // false while a chunk is written and handed on: a failure then is ours, not the network's
      try {
        for await (const chunk of body) {
          reading = false;
          arm();
          const buf = chunk as Buffer;
          if (offset === 0 && looksLikeHtml(buf)) throw htmlPage(url);
          hash.update(buf);
          let w = 0;
          while (w < buf.length) w += writeSync(fd, buf, w, buf.length - w);
          offset += buf.length;
          fetched += buf.length;
          if (tap) {
            const wait = tap.data(buf, meta!.total);
            if (wait) await wait;
          }
          const now = Date.now();
          // The last bytes are reported once, after the loop.
          if (now - lastReport > 200 && (meta!.total === undefined || offset < meta!.total)) {
            lastReport = now;
            opts.onProgress?.({ phase: 'download', done: offset, total: meta!.total, unit: 'bytes', detail });
          }
          reading = true;
        }
      } catch (err) {
        if (err instanceof PiImageError || ctl.signal.aborted) throw err instanceof PiImageError ? err : reason(ctl, err);
        if (!reading) {
          throw new PiImageError('IO', `${partial}: cannot write the download: ${(err as Error).message}`, 'Check the free space and the permissions of the cache directory (--cache, PI_IMAGE_CACHE), then run the command again.');
        }
        const of = meta!.total !== undefined ? ` of ${meta!.total}` : '';
        throw new DownloadError(url, `connection lost after ${offset}${of} bytes (${(err as Error).message})`);
      }
      if (meta!.total !== undefined && offset < meta!.total) {
        throw new DownloadError(url, `connection closed after ${offset} of ${meta!.total} bytes`);
      }
      if (meta!.total !== undefined && offset > meta!.total) {
        restart();
        throw new DownloadError(url, `server sent more bytes than announced`);
      }
      opts.onProgress?.({ phase: 'download', done: offset, total: meta!.total ?? offset, unit: 'bytes', detail });
      return true;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }
}

const MAX_REDIRECTS = 10;

/** The DownloadError for a request that failed before or during the body (network, redirects), else `err`. */
function requestFailed(url: string, err: unknown): unknown {
  if (err instanceof PiImageError || !(err instanceof Error)) return err;
  const e = err as Error & { type?: string; code?: string; hostname?: string };
  if (e.type === 'max-redirect') {
    return new DownloadError(url, `more than ${MAX_REDIRECTS} redirects (a redirect loop?): ${e.message}`, { permanent: true, hint: 'Check the URL or the mirror: its redirects never reach a file.' });
  }
  const host = e.hostname ?? hostOf(url);
  const code = e.code ?? (e as { errno?: string }).errno;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new DownloadError(url, `no network or DNS failure: cannot resolve host ${host} (getaddrinfo ${code})`, { unreachable: { kind: 'dns', host } });
  }
  if (code === 'ECONNREFUSED') {
    return new DownloadError(url, `nothing answers at ${hostOf(url, true)} (connection refused)`, { unreachable: { kind: 'refused', host: hostOf(url, true) } });
  }
  if (code === 'ENETUNREACH' || code === 'EHOSTUNREACH') {
    return new DownloadError(url, `no network: ${host} is unreachable (${code})`, { unreachable: { kind: 'unreachable', host } });
  }
  if (e.type === 'system') return new DownloadError(url, `the connection failed (${/reason: (.*)$/.exec(e.message)?.[1] ?? e.message})`);
  return err;
}

function hostOf(url: string, withPort = false): string {
  try {
    const u = new URL(url);
    return withPort ? u.host : u.hostname;
  } catch {
    return url;
  }
}

/** Does a first chunk look like an HTML page (a web page served where a file was expected)? */
function looksLikeHtml(buf: Buffer): boolean {
  return /^\s*<(!doctype\s+html|html[\s>]|head[\s>])/i.test(buf.subarray(0, 256).toString('latin1'));
}

function htmlPage(url: string): DownloadError {
  return new DownloadError(url, 'the server answered with an HTML page, not the file (a wrong URL, or a proxy or login page in the way)', {
    permanent: true,
    hint: 'Open the URL in a browser to see what it serves; give the URL of the file itself.',
  });
}

/** The error that explains an aborted request: our timeout's DownloadError, the caller's reason, or the original. */
function reason(ctl: AbortController, err: unknown): unknown {
  if (ctl.signal.aborted && ctl.signal.reason instanceof Error) return ctl.signal.reason;
  return err;
}

/** Fetch a small text file (SHA256SUMS) over http(s) or file://, with a few retries. */
export async function fetchText(url: string, opts: { signal?: AbortSignal; retries?: number; backoffMs?: number } = {}): Promise<string> {
  if (url.startsWith('file:')) {
    try {
      return readFileSync(fileURLToPath(url), 'utf8');
    } catch (err) {
      throw new NotFoundError(`${url}: ${(err as Error).message}`);
    }
  }
  const retries = opts.retries ?? 3;
  for (let i = 0; ; i++) {
    try {
      let res: Response;
      try {
        res = await fetch(url, { headers: { 'Accept-Encoding': 'identity', 'User-Agent': USER_AGENT }, signal: opts.signal ?? AbortSignal.timeout(60_000), compress: false, follow: MAX_REDIRECTS });
      } catch (err) {
        throw requestFailed(url, err);
      }
      if (res.status === 404 || res.status === 410) throw new NotFoundError(`${url}: HTTP ${res.status}: not found`);
      if (!res.ok) throw new DownloadError(url, `HTTP ${res.status} ${res.statusText}`, { status: res.status });
      return await res.text();
    } catch (err) {
      // No retries for what asking again cannot fix, nor for a host that cannot be reached (no network).
      const retryable = !(err instanceof NotFoundError) && !(err instanceof DownloadError && (err.permanent || err.unreachable));
      if (!retryable || i >= retries || opts.signal?.aborted) throw err instanceof PiImageError ? err : new DownloadError(url, (err as Error).message);
      await sleep((opts.backoffMs ?? defaultBackoff()) * 2 ** i);
    }
  }
}

/** Parse a SHA256SUMS file (`<hex> *<file>` or `<hex>  <file>`) into file -> hash. */
export function parseSha256Sums(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.trim());
    if (m) map.set(m[2].replace(/^\.\//, ''), m[1].toLowerCase());
  }
  return map;
}
