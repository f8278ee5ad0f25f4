// Verified, resumable HTTP downloads (images, release files, .debs) over http-body.ts's lean GET.
// - The body goes through a BodyWriter: written at its offset in `<dest>.partial` and hashed on the hashing
//   thread while the socket reads on, so a download costs one core less than reading, hashing and writing in turn.
// - An interruption (reset, timeout, 5xx, a killed process) resumes with `Range` from the bytes on disk, re-hashed
//   first when resuming in a new run; `If-Range` makes a changed file restart from zero.
// - Not retried: a failure asking again cannot fix (4xx, a redirect loop, Content-Encoding, an HTML page), and a
//   host that cannot be reached (DNS, refused) before any byte came.
// Invariants:
// - Only a download whose sha256 matches is renamed to `<dest>`; a mismatch deletes the bytes and names both hashes.
// - A `.partial` stays after a failure only when a resume can use it (bytes on disk, Range honoured), and only
//   then does the error say to run again.
// - A tap sees the file's bytes in order, each piece only once it is on disk.
import { openSync, closeSync, ftruncateSync, fstatSync, renameSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { PiImageError, NotFoundError, VerifyError, DownloadError, type Unreachable } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { readJson, writeJsonAtomic, type DownloadRecord } from './cache.ts';
import { getBody, getSmall, MAX_REDIRECTS, type BodyResponse, type SmallResponse } from './http-body.ts';
import { BodyWriter } from './body-writer.ts';
import { ThreadHash } from './hash-thread.ts';

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
  closeSync(openSync(partial, 'a'));
  const fd = openSync(partial, 'r+'); // not append: the writes are positional
  let offset = fstatSync(fd).size;
  let hash = new ThreadHash();
  let fetched = 0;
  let restartedOnce = false;
  let tap = offset === 0 ? opts.tap : undefined;
  if (!tap) opts.tap?.reset();
  try {
    if (offset > 0) await hash.file(partial, offset);
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
      const sha256 = await hash.digest();
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
    hash.drop();
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
    hash.drop();
    hash = new ThreadHash();
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
      const headers: Record<string, string> = { 'User-Agent': USER_AGENT };
      if (offset > 0) {
        headers.Range = `bytes=${offset}-`;
        const validator = meta!.etag && !meta!.etag.startsWith('W/') ? meta!.etag : meta!.lastModified;
        if (validator) headers['If-Range'] = validator;
      }
      arm();
      let res: BodyResponse;
      try {
        res = await getBody(url, headers, { idleMs: 0, signal: ctl.signal }); // idle: our timer, reset per piece
      } catch (err) {
        throw requestFailed(url, reason(ctl, err));
      }
      if (res.status === 404 || res.status === 410) {
        res.discard();
        throw new NotFoundError(`${url}: HTTP ${res.status} ${res.statusText}: the file is not there (wrong URL, or the release moved)`);
      }
      if (res.status === 416 && offset > 0) {
        // Range not satisfiable: either we already have it all, or the file shrank. Check by length.
        const total = Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
        res.discard();
        if (total === offset) return true;
        restart();
        return false;
      }
      if (res.status !== 200 && res.status !== 206) {
        res.discard();
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
          res.discard();
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
        res.discard();
        throw new DownloadError(url, `the server sent the file with Content-Encoding: ${encoding} although asked for identity (a misconfigured server or proxy)`, { permanent: true, hint: 'Use another mirror or URL.' });
      }
      if (/^\s*text\/html\b/i.test(res.headers.get('content-type') ?? '')) {
        res.discard();
        throw htmlPage(url);
      }
      writeJsonAtomic(metaPath, meta);
      let lastReport = 0;
      let first = offset === 0;
      const total = meta!.total;
      // The tap sees each buffer once it is on disk; a restart drops it (see restart()).
      const writer = new BodyWriter(fd, offset, hash, (bytes) => tap?.data(bytes, total));
      let more = false;
      try {
        await res.read((buf) => {
          arm();
          if (first) {
            first = false;
            if (looksLikeHtml(buf)) throw htmlPage(url);
          }
          if (total !== undefined && offset + buf.length > total) {
            more = true;
            throw new DownloadError(url, 'server sent more bytes than announced');
          }
          const wait = writer.push(buf); // copied now (or thrown): only then counted
          offset += buf.length;
          fetched += buf.length;
          const now = Date.now();
          // The last bytes are reported once, after the body.
          if (now - lastReport > 200 && (total === undefined || offset < total)) {
            lastReport = now;
            opts.onProgress?.({ phase: 'download', done: offset, total, unit: 'bytes', detail });
          }
          return wait;
        });
        await writer.flush(); // the file holds exactly `offset` bytes, all of them hashed and tapped
      } catch (err) {
        await writer.flush().catch(() => undefined);
        if (writer.failed) throw writeFailed(partial, writer.failed);
        if (more) restart();
        if (err instanceof PiImageError || ctl.signal.aborted) throw err instanceof PiImageError ? err : reason(ctl, err);
        const of = total !== undefined ? ` of ${total}` : '';
        throw new DownloadError(url, `connection lost after ${offset}${of} bytes (${shortReason(err)})`);
      } finally {
        writer.release();
      }
      if (total !== undefined && offset < total) {
        throw new DownloadError(url, `connection closed after ${offset} of ${total} bytes`);
      }
      opts.onProgress?.({ phase: 'download', done: offset, total: total ?? offset, unit: 'bytes', detail });
      return true;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** fetchText is for checksum lists and indexes: a bigger answer is not one. */
const MAX_TEXT = 64 << 20;

/** The DownloadError for a request that failed before or during the body (network, redirects), else `err`. */
function requestFailed(url: string, err: unknown): unknown {
  if (err instanceof PiImageError || !(err instanceof Error)) return err;
  const e = err as Error & { type?: string; code?: string; hostname?: string };
  if (e.type === 'max-redirect') {
    return new DownloadError(url, `more than ${MAX_REDIRECTS} redirects (a redirect loop?)`, { permanent: true, hint: 'Check the URL or the mirror: its redirects never reach a file.' });
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
  if (/closed before a response/.test(e.message)) return new DownloadError(url, 'the server closed the connection before a response');
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return err; // the caller's abort, or fetchText's timeout: as it is
  return new DownloadError(url, `the connection failed (${shortReason(e)})`);
}

function hostOf(url: string, withPort = false): string {
  try {
    const u = new URL(url);
    return withPort ? u.host : u.hostname;
  } catch {
    return url;
  }
}

function writeFailed(partial: string, err: Error): PiImageError {
  return new PiImageError('IO', `${partial}: cannot write the download: ${err.message}`, 'Check the free space and the permissions of the cache directory (--cache, PI_IMAGE_CACHE), then run the command again.');
}

/** A transport error's words without the URL in front (the DownloadError names it already). */
function shortReason(err: unknown): string {
  return String((err as Error)?.message ?? err).replace(/^https?:\/\/\S+: /, '');
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
      let res: SmallResponse;
      try {
        res = await getSmall(url, { 'User-Agent': USER_AGENT }, { max: MAX_TEXT, idleMs: 60_000, signal: opts.signal ?? AbortSignal.timeout(60_000) });
      } catch (err) {
        throw requestFailed(url, err);
      }
      if (res.status === 404 || res.status === 410) throw new NotFoundError(`${url}: HTTP ${res.status}: not found`);
      if (!res.ok) throw new DownloadError(url, `HTTP ${res.status} ${res.statusText}`, { status: res.status });
      return res.text();
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
