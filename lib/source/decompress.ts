// Streaming decompression of a source file into raw image bytes: the format is told by its magic bytes (not its
// name); xz through a spawned `xz -dc` when the system has one (fast, flat memory) or the xz-decompress WASM decoder
// otherwise; .zip through unzipper (its single .img member; names with `..` or absolute paths are refused; CRC32
// and size checked); .gz through zlib; anything else is copied as a raw image. Damaged input is a CorruptImageError.
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, crc32 } from 'node:zlib';
import type unzipper from 'unzipper';
import { CorruptImageError, InputError } from '../errors.ts';

export type SourceFormat = 'xz' | 'zip' | 'gz' | 'raw';
export type XzDecoder = 'auto' | 'xz' | 'wasm';

/** The first bytes of every .xz stream. */
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** Do these bytes start an .xz stream? */
export function isXzStart(head: Buffer): boolean {
  return head.length >= XZ_MAGIC.length && head.subarray(0, XZ_MAGIC.length).equals(XZ_MAGIC);
}

/** The format of a file from its first bytes. */
export function detectFormat(path: string): SourceFormat {
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(6);
  const n = readSync(fd, b, 0, 6, 0);
  closeSync(fd);
  if (isXzStart(b.subarray(0, n))) return 'xz';
  if (n >= 4 && b.readUInt32LE(0) === 0x04034b50) return 'zip';
  if (n >= 4 && b.readUInt32LE(0) === 0x06054b50) return 'zip'; // empty zip: refused later with a clear message
  if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gz';
  return 'raw';
}

let xzPresent: boolean | undefined;
/** True when a working `xz` is on PATH. */
export function hasSystemXz(): boolean {
  if (xzPresent === undefined) xzPresent = spawnSync('xz', ['--version'], { stdio: 'ignore' }).status === 0;
  return xzPresent;
}

/** The uncompressed size recorded in an .xz index (`xz --robot --list`), when the system xz can tell. */
export function xzUncompressedSize(path: string): number | undefined {
  if (!hasSystemXz()) return undefined;
  const r = spawnSync('xz', ['--robot', '--list', path], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const totals = r.stdout.split('\n').find((l) => l.startsWith('totals'));
  const n = Number(totals?.split('\t')[4]);
  return Number.isFinite(n) ? n : undefined;
}

export interface Decoded {
  /** Raw image bytes. */
  stream: AsyncIterable<Buffer>;
  /** 'xz' (system xz -dc), 'wasm', 'zlib', 'unzipper' or 'copy'. */
  decoder: string;
  /** Uncompressed size when known in advance. */
  expectedSize?: number;
  /** The zip member read. */
  member?: string;
  /** Resolves once the decoder has checked the end of its input (exit code, CRC); throws CorruptImageError. */
  finished: () => Promise<void>;
}

/** Is `name` a safe relative zip member name (no `..` segment, not absolute, no drive letter)? */
export function isSafeMemberName(name: string): boolean {
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) return false;
  return !name.split(/[\\/]/).some((seg) => seg === '..');
}

/** Open `path` (of `format`) for decompression. */
export async function openDecoded(path: string, format: SourceFormat, opts: { xz?: XzDecoder; signal?: AbortSignal; name?: string } = {}): Promise<Decoded> {
  const name = opts.name ?? basename(path); // what errors call the file: the user's path or URL
  const big = { highWaterMark: 1 << 20 };
  switch (format) {
    case 'raw': {
      return { stream: createReadStream(path, big), decoder: 'copy', finished: async () => {} };
    }
    case 'gz': {
      const gunzip = createGunzip({ chunkSize: 1 << 20 });
      const stream = createReadStream(path, big).pipe(gunzip);
      return { stream: wrapErrors(stream, (e) => new CorruptImageError(`${name}: gzip data is damaged or truncated: ${e.message}`)), decoder: 'zlib', finished: async () => {} };
    }
    case 'xz': {
      const which = opts.xz ?? ((process.env.PI_IMAGE_XZ as XzDecoder | undefined) || 'auto');
      if (which === 'xz' || (which === 'auto' && hasSystemXz())) return spawnXz(path, name, opts.signal);
      return wasmXz(path, name, big);
    }
    case 'zip':
      return openZip(path, name);
  }
}

/**
 * Decode on every core: a multi-block .xz (as `xz -T0` makes them) decodes its blocks in parallel; a single-block
 * one decodes as before. xz lowers the thread count itself to stay within its memory limit for threaded decoding,
 * which is capped here so the decoder stays small beside the build (xz before 5.4 ignores both for decoding).
 */
const XZ_THREADS = ['-T0', '--memlimit-mt-decompress=96MiB'];
/** xz-decompress's WASM decoder (xz-embedded): its result codes, in xz's own words. */
const WASM_XZ_ERRORS: Record<number, string> = {
  2: 'Unsupported type of integrity check',
  3: 'Cannot allocate memory',
  4: 'Memory usage limit reached',
  5: 'File format not recognized',
  6: 'Unsupported options',
  7: 'Compressed data is corrupt',
  8: 'Unexpected end of input',
};

/**
 * The WASM path, for machines without xz: a web stream of the file through xz-decompress's XzReadableStream (it
 * asks for input only as its output is read, so memory stays flat). The package is CommonJS whose exports Node's
 * ESM loader cannot see by name, so it is loaded with require. xz-embedded checks each block's CRC32/CRC64.
 */
function wasmXz(path: string, name: string, big: { highWaterMark: number }): Decoded {
  const { XzReadableStream } = createRequire(import.meta.url)('xz-decompress') as typeof import('xz-decompress');
  const input = Readable.toWeb(createReadStream(path, big)) as unknown as ReadableStream<Uint8Array>;
  const out = Readable.fromWeb(new XzReadableStream(input) as unknown as import('node:stream/web').ReadableStream<Uint8Array>);
  const stream = mapChunks(
    wrapErrors(out, (e) => {
      const code = /error code (\d+)/.exec(e.message)?.[1];
      const words = code !== undefined ? (WASM_XZ_ERRORS[Number(code)] ?? `error ${code}`) : e.message;
      return new CorruptImageError(`${name}: xz data is damaged or truncated: ${words} (WASM decoder)`, undefined, 'Delete it and download again (pi-image images prune).');
    }),
  );
  return { stream, decoder: 'wasm', expectedSize: xzUncompressedSize(path), finished: async () => {} };
}

/** `xz -dc < path`: stdout is the stream; a non-zero exit after it ends is a CorruptImageError with xz's words. */
function spawnXz(path: string, name: string, signal?: AbortSignal): Decoded {
  const child = spawn('xz', ['-dc', ...XZ_THREADS, '--', path], { stdio: ['ignore', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr += d));
  const exit = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  exit.catch(() => undefined);
  return {
    stream: child.stdout,
    decoder: 'xz',
    expectedSize: xzUncompressedSize(path),
    finished: async () => {
      const code = await exit;
      if (code !== 0) throw xzFailed(name, stderr, code, path);
    },
    // Killing xz if the consumer stops early is done by the caller through `signal` or by closing stdout.
  };
}

/** The error for an `xz -dc` that exited with `code`: xz's own words, without its "xz: <input>: " prefixes. */
function xzFailed(name: string, stderr: string, code: number | null, input?: string): CorruptImageError {
  const prefixes = ['(stdin): ', ...(input ? [`${input}: `] : [])];
  const msg = stderr
    .trim()
    .split('\n')
    .map((l) => {
      const line = l.replace(/^xz: /, '');
      const p = prefixes.find((x) => line.startsWith(x));
      return p ? line.slice(p.length) : line;
    })
    .join('; ');
  return new CorruptImageError(`${name}: xz data is damaged or truncated: ${msg || `xz exited with ${code}`}`, undefined, 'Delete it and download again (pi-image images prune).');
}

/** True when `openDecoded` would use the system xz for this format and choice. */
export function usesSystemXz(format: SourceFormat, choice?: XzDecoder): boolean {
  const which = choice ?? ((process.env.PI_IMAGE_XZ as XzDecoder | undefined) || 'auto');
  return format === 'xz' && (which === 'xz' || (which === 'auto' && hasSystemXz()));
}

/**
 * The fast path for .xz: `xz -dc` writes straight into `dest` (a regular file, so xz itself leaves zero runs as
 * holes). No image bytes pass through this process and none are read back: xz checks every block it decodes against
 * the check stored in the stream (CRC64 by default) and exits non-zero on a mismatch, and the caller checks the final
 * size against the xz index, so there is nothing left for a second pass to prove. (Reading back behind xz to hash the
 * image cost more than a fifth of xz's own time: the first buffered read of a hole makes the kernel allocate and zero
 * a page cache page for it, ~0.5 GB/s here, and the image's trailing hole could only be read after xz had exited.)
 */
export async function xzToFile(
  path: string,
  dest: string,
  opts: { signal?: AbortSignal; onBytes?: (done: number) => void; name?: string } = {},
): Promise<{ size: number; dataBytes: number }> {
  return startXz(dest, { ...opts, input: path }).result;
}

export interface XzJob {
  /** xz's stdin when no input path was given: write the compressed bytes here, then end() it. */
  stdin?: import('node:stream').Writable;
  /** Size and allocated bytes of the raw output once xz has exited (the caller reports the final size); rejects
   * with CorruptImageError when xz fails. */
  result: Promise<{ size: number; dataBytes: number }>;
  /** Stop xz (the output file is left for the caller to delete). */
  kill(): void;
  /** All compressed bytes have been written to stdin: end it. */
  finishInput(): void;
}

/** How often the output's size is looked at for progress while xz runs. */
const PROGRESS_MS = 200;

/** Start `xz -dc` into `dest`, reading `input` (a path) or, without one, what is written to the job's stdin. */
export function startXz(dest: string, opts: { input?: string; name?: string; signal?: AbortSignal; onBytes?: (done: number) => void; /** false: one thread (a threaded decoder holds every block it decodes at once) */ threads?: boolean }): XzJob {
  const name = opts.name ?? (opts.input ? basename(opts.input) : basename(dest));
  const outFd = openSync(dest, 'w', 0o644);
  let stderr = '';
  const threads = opts.threads === false ? [] : XZ_THREADS;
  const child = spawn('xz', opts.input ? ['-dc', ...threads, '--', opts.input] : ['-dc', ...threads], { stdio: [opts.input ? 'ignore' : 'pipe', outFd, 'pipe'], signal: opts.signal });
  child.stdin?.on('error', () => undefined); // EPIPE when xz stops early: its exit status tells why
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (stderr += d));
  const progress = opts.onBytes && setInterval(() => opts.onBytes!(fstatSync(outFd).size), PROGRESS_MS);
  const exit = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const result = (async () => {
    try {
      const code = await exit;
      if (code !== 0) throw xzFailed(name, stderr, code, opts.input);
      const st = fstatSync(outFd);
      return { size: st.size, dataBytes: Math.min(st.blocks * 512, st.size) };
    } finally {
      if (progress) clearInterval(progress);
      closeSync(outFd);
    }
  })();
  result.catch(() => undefined); // the caller awaits it; a kill before that is not an unhandled rejection
  return {
    stdin: child.stdin ?? undefined,
    result,
    kill: () => child.kill('SIGKILL'),
    finishInput: () => child.stdin?.end(),
  };
}

async function openZip(path: string, name: string): Promise<Decoded> {
  let dir: unzipper.CentralDirectory;
  try {
    // Loaded here: unzipper (with bluebird) costs every command ~0.1 s of start-up, and only .zip sources need it.
    const { Open } = (await import('unzipper')).default;
    dir = await Open.file(path);
  } catch (err) {
    throw new CorruptImageError(`${name}: not a readable zip archive (truncated or damaged?): ${(err as Error).message}`);
  }
  for (const f of dir.files) {
    if (!isSafeMemberName(f.path)) {
      throw new InputError(`${name}: zip member "${f.path}" has an unsafe path (.. or absolute); refusing the archive`);
    }
  }
  const imgs = dir.files.filter((f) => f.type === 'File' && /\.img$/i.test(f.path) && !f.path.startsWith('__MACOSX/'));
  if (imgs.length !== 1) {
    const names = dir.files.filter((f) => f.type === 'File').map((f) => f.path);
    throw new InputError(`${name}: expected exactly one .img member in the zip, found ${imgs.length} (members: ${names.join(', ') || 'none'})`);
  }
  const f = imgs[0];
  let crc = 0;
  let size = 0;
  const entry = f.stream();
  const stream = (async function* () {
    try {
      for await (const chunk of entry) {
        const buf = chunk as Buffer;
        crc = crc32(buf, crc);
        size += buf.length;
        yield buf;
      }
    } catch (err) {
      throw new CorruptImageError(`${name}: zip member ${f.path} is damaged: ${(err as Error).message}`);
    }
  })();
  return {
    stream,
    decoder: 'unzipper',
    expectedSize: f.uncompressedSize,
    member: f.path,
    finished: async () => {
      if (size !== f.uncompressedSize) throw new CorruptImageError(`${name}: zip member ${f.path} gave ${size} bytes, its header says ${f.uncompressedSize}`);
      if ((crc >>> 0) !== (f.crc32 >>> 0)) {
        throw new CorruptImageError(`${name}: zip member ${f.path} CRC32 mismatch: expected ${(f.crc32 >>> 0).toString(16)}, got ${(crc >>> 0).toString(16)}`);
      }
    },
  };
}

async function* wrapErrors(stream: AsyncIterable<unknown>, wrap: (e: Error) => Error): AsyncIterable<Buffer> {
  try {
    for await (const c of stream) yield c as Buffer;
  } catch (err) {
    throw wrap(err as Error);
  }
}

async function* mapChunks(stream: AsyncIterable<Buffer | Uint8Array>): AsyncIterable<Buffer> {
  for await (const c of stream) yield Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}
