// A lean HTTP/1.1 GET for big bodies (image downloads, registry blobs: gigabytes): one connection per request
// (Connection: close),
// the socket reads into one reused buffer (net/tls `onread`), so a body costs no allocation per chunk and no
// stream hops; the caller sees each piece of the body as a view valid only during its call and can hold the
// socket back by returning a promise. Follows redirects (at most 10; Authorization is dropped when the origin
// changes, as for a registry's redirect to a blob CDN), decodes Content-Length, chunked and until-close bodies.
// Invariants: nothing the caller did not see is counted as body; a body cut short is an error naming the byte
// counts; memory per request is the read buffer and the response head.
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

const READ_BUF = 256 << 10;
const MAX_HEAD = 64 << 10;
export const MAX_REDIRECTS = 10;

export interface BodyResponse {
  status: number;
  statusText: string;
  /** The URL that answered (after redirects). */
  url: string;
  headers: { get(name: string): string | null };
  /**
   * Pass the body to `onData` in order (views into a reused buffer: copy what must outlive the call; a returned
   * promise holds the socket back until it settles). Resolves when the body is complete; rejects when the
   * connection ends early or `onData` fails. Call once.
   */
  read(onData: (chunk: Buffer) => void | Promise<void>): Promise<void>;
  /** Drop the body and close the connection. */
  discard(): void;
}

/** GET `url` with `headers`, following redirects; resolves once the response head is in. */
export async function getBody(url: string, headers: Record<string, string>, opts: { idleMs?: number; ca?: string | Buffer; signal?: AbortSignal } = {}): Promise<BodyResponse> {
  let u = new URL(url);
  let h = { ...headers };
  for (let hops = 0; ; hops++) {
    const res = await request(u, h, opts.idleMs ?? 30_000, opts.ca, opts.signal);
    const loc = res.headers.get('location');
    if (![301, 302, 303, 307, 308].includes(res.status) || !loc) return res;
    res.discard();
    if (hops >= MAX_REDIRECTS) throw Object.assign(new Error(`more than ${MAX_REDIRECTS} redirects (a redirect loop?) from ${url}`), { type: 'max-redirect' });
    const next = new URL(loc, u);
    if (next.origin !== u.origin) h = Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== 'authorization'));
    u = next;
  }
}

/** A response read whole: manifests, tokens, checksum lists. */
export interface SmallResponse {
  status: number;
  statusText: string;
  ok: boolean;
  url: string;
  headers: { get(name: string): string | null };
  bytes: Buffer;
  text(): string;
  /** The body as JSON; throws a SyntaxError when it is not. */
  json(): unknown;
}

/** GET `url` and read its body whole: at most `max` bytes (default 16 MiB), else an error saying so. */
export async function getSmall(url: string, headers: Record<string, string>, opts: { max?: number; idleMs?: number; ca?: string | Buffer; signal?: AbortSignal } = {}): Promise<SmallResponse> {
  const max = opts.max ?? 16 << 20;
  const res = await getBody(url, headers, opts);
  const parts: Buffer[] = [];
  let size = 0;
  await res.read((b) => {
    size += b.length;
    if (size > max) throw new Error(`${res.url}: an answer of more than ${max} bytes`);
    parts.push(Buffer.from(b)); // a copy: the view is reused
  });
  const bytes = Buffer.concat(parts);
  return { status: res.status, statusText: res.statusText, ok: res.status >= 200 && res.status <= 299, url: res.url, headers: res.headers, bytes, text: () => bytes.toString('utf8'), json: () => JSON.parse(bytes.toString('utf8')) as unknown };
}

type Framing = { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };

function request(u: URL, headers: Record<string, string>, idleMs: number, ca?: string | Buffer, signal?: AbortSignal): Promise<BodyResponse> {
  if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return Promise.reject(new Error(`${u.href}: unsupported protocol ${u.protocol}`));
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
  const lines = [`GET ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, 'Connection: close', 'Accept-Encoding: identity'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  const text = lines.join('\r\n') + '\r\n\r\n';

  return new Promise<BodyResponse>((resolveHead, rejectHead) => {
    const buf = Buffer.allocUnsafe(READ_BUF);
    let head: Buffer | undefined = Buffer.alloc(0);
    let framing: Framing = { kind: 'close' };
    let res: BodyResponse | undefined;
    // The body side: who sees it, bytes waiting for them (copied), and how reading ends.
    let sink: ((c: Buffer) => void | Promise<void>) | undefined;
    let early: Buffer | undefined; // body bytes that came with the head, before read() was called
    let rest: Buffer | undefined; // the unprocessed rest of a read (a copy) while the sink holds the socket back
    const backlog: Buffer[] = []; // reads that came while holding back (TLS may hand over what it decrypted)
    let waiting = false;
    let complete = false;
    let ended = false;
    let failed: Error | undefined;
    let closed = false; // read() settled
    let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
    // Chunked decoding state: a size line being gathered, the bytes left of the current chunk, then its CRLF.
    let line = '';
    let chunkLeft = 0;
    let phase: 'size' | 'data' | 'crlf' | 'trailer' = 'size';

    const opts = { host, port, onread: { buffer: buf, callback: (n: number, b: Uint8Array) => onBytes(Buffer.from(b.buffer, b.byteOffset, n)) } };
    const sock: Socket =
      u.protocol === 'https:' ? tlsConnect({ ...opts, servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], ...(ca ? { ca } : {}) }) : netConnect(opts);
    sock.setNoDelay(true);
    sock.setTimeout(idleMs, () => sock.destroy(new Error(`${u.href}: no data for ${idleMs / 1000} s`)));
    sock.write(text);
    sock.on('error', (err) => {
      if (!complete) fail(err);
    });
    // Aborting fails the head or the body with the signal's reason; once the body is complete it changes nothing.
    const onAbort = (): void => fail(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.on('close', () => signal?.removeEventListener('abort', onAbort));
    sock.on('end', () => {
      ended = true;
      if (!res) fail(new Error(`${u.href}: the connection closed before a response`));
      else if (sink && !waiting && !rest && !backlog.length) finishAtEnd();
    });
    sock.on('close', () => {
      if (!res) fail(new Error(`${u.href}: the connection closed before a response`));
      else if (sink && !waiting && !rest && !backlog.length) finishAtEnd();
    });

    function fail(err: Error): void {
      if (failed || closed) return;
      failed = err;
      sock.destroy();
      if (!res) rejectHead(err);
      else if (settle && !closed) {
        closed = true;
        settle.reject(err);
      }
    }
    /** The body is all delivered (or dropped): close, and resolve read() once it was called. */
    function done(): void {
      complete = true;
      sock.destroy();
      if (settle && !closed) {
        closed = true;
        settle.resolve();
      }
    }
    function finishAtEnd(): void {
      if (complete || failed) return;
      if (framing.kind === 'close') done();
      else if (framing.kind === 'length') fail(new Error(`${u.href}: the connection closed with ${framing.left} bytes of the body still to come`));
      else fail(new Error(`${u.href}: the connection closed inside a chunked body`));
    }

    /** Socket bytes (a view into `buf`); false pauses the socket. */
    function onBytes(b: Buffer): boolean {
      if (failed || complete) return false;
      if (head) {
        const all: Buffer = Buffer.concat([head, b]);
        const end = all.indexOf('\r\n\r\n');
        if (end < 0) {
          if (all.length > MAX_HEAD) fail(new Error(`${u.href}: a response head of more than ${MAX_HEAD} bytes`));
          head = all;
          return true;
        }
        head = undefined;
        try {
          res = { ...parseHead(all.subarray(0, end).toString('latin1'), u.href), url: u.href, read: start, discard: () => done() };
        } catch (err) {
          fail(err as Error);
          return false;
        }
        framing = framingOf(res);
        const body = all.subarray(end + 4);
        if (body.length) early = Buffer.from(body); // a copy: `all` may be a view of `buf` (no concat when head was empty)
        if (framing.kind === 'length' && framing.left === 0 && !early) complete = true;
        resolveHead(res);
        return false; // until read() says where the body goes
      }
      if (!sink || waiting) {
        // Bytes while we hold back: kept (copied), in order, for when the sink is ready.
        const c = Buffer.from(b);
        if (!sink) early = early ? Buffer.concat([early, c]) : c;
        else backlog.push(c);
        return false;
      }
      return feed(b);
    }

    /** Deliver `b` to the sink through the framing; false when the sink holds the socket back or the body ended. */
    function feed(b: Buffer): boolean {
      let i = 0;
      while (i < b.length && !complete && !failed) {
        if (framing.kind === 'length' && framing.left === 0) {
          complete = true;
          break;
        }
        let piece: Buffer;
        if (framing.kind === 'close') {
          piece = b.subarray(i);
          i = b.length;
        } else if (framing.kind === 'length') {
          const n = Math.min(framing.left, b.length - i);
          piece = b.subarray(i, i + n);
          i += n;
          framing.left -= n;
        } else if (phase === 'data') {
          const n = Math.min(chunkLeft, b.length - i);
          piece = b.subarray(i, i + n);
          i += n;
          chunkLeft -= n;
          if (chunkLeft === 0) phase = 'crlf';
        } else {
          // A chunk-size line, the CRLF after a chunk, trailer lines: byte by byte (they are short).
          const c = b[i++]!;
          if (c !== 0x0a) {
            if (c !== 0x0d) line += String.fromCharCode(c);
            if (line.length > 4096) {
              fail(new Error(`${u.href}: a chunked-encoding line of more than 4096 bytes`));
              return false;
            }
            continue;
          }
          const l = line.trim();
          line = '';
          if (phase === 'crlf') {
            if (l !== '') {
              fail(new Error(`${u.href}: bad chunked encoding (no CRLF after a chunk)`));
              return false;
            }
            phase = 'size';
          } else if (phase === 'size') {
            const hex = l.split(';')[0]!.trim();
            if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
              fail(new Error(`${u.href}: bad chunk-size line "${l.slice(0, 40)}"`));
              return false;
            }
            chunkLeft = parseInt(hex, 16);
            phase = chunkLeft === 0 ? 'trailer' : 'data';
          } else if (l === '') {
            complete = true; // the empty line after the last chunk's trailers
          }
          continue;
        }
        if (piece.length === 0) continue;
        let r: void | Promise<void>;
        try {
          r = sink!(piece);
        } catch (err) {
          fail(err as Error);
          return false;
        }
        if (framing.kind === 'length' && framing.left === 0) complete = true;
        if (r) {
          waiting = true;
          rest = i < b.length ? Buffer.from(b.subarray(i)) : undefined;
          r.then(
            () => {
              waiting = false;
              const more = rest;
              rest = undefined;
              if (complete) return done();
              if (more && !feed(more)) return;
              while (backlog.length) if (!feed(backlog.shift()!)) return;
              if (complete) return done();
              if (ended) finishAtEnd();
              else sock.resume();
            },
            (err: Error) => {
              waiting = false;
              fail(err);
            },
          );
          return false;
        }
      }
      if (framing.kind === 'length' && framing.left === 0) complete = true;
      if (complete) {
        done();
        return false;
      }
      return true;
    }

    // read(): where the body goes.
    function start(onData: (c: Buffer) => void | Promise<void>): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        if (sink) throw new Error('read() called twice');
        sink = onData;
        settle = { resolve, reject };
        if (failed) return reject(failed);
        if (complete) return done();
        const e = early;
        early = undefined;
        if (e) {
          // `e` is our own copy: feed may keep a view of it while the sink holds back.
          if (!feed(e)) return;
        }
        if (complete) return done();
        if (ended) finishAtEnd();
        else sock.resume();
      });
    }
  });
}

/** The status line and headers of a response head. */
function parseHead(text: string, url: string): Pick<BodyResponse, 'status' | 'statusText' | 'headers'> {
  const [statusLine, ...rest] = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine ?? '');
  if (!m) throw new Error(`${url}: not an HTTP/1.1 response (${(statusLine ?? '').slice(0, 60)})`);
  const map = new Map<string, string>();
  for (const l of rest) {
    const c = l.indexOf(':');
    if (c <= 0) continue;
    const k = l.slice(0, c).trim().toLowerCase();
    const v = l.slice(c + 1).trim();
    map.set(k, map.has(k) ? `${map.get(k)}, ${v}` : v);
  }
  return { status: Number(m[1]), statusText: m[2] ?? '', headers: { get: (n) => map.get(n.toLowerCase()) ?? null } };
}

function framingOf(res: BodyResponse): Framing {
  if (res.status === 204 || res.status === 304 || (res.status >= 100 && res.status < 200)) return { kind: 'length', left: 0 };
  const te = res.headers.get('transfer-encoding');
  if (te && /\bchunked\b/i.test(te)) return { kind: 'chunked' };
  const cl = res.headers.get('content-length');
  if (cl !== null) {
    const n = Number(cl);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${res.url}: bad Content-Length ${cl}`);
    return { kind: 'length', left: n };
  }
  return { kind: 'close' };
}
