// Decoding a verified source file into the cache, as images/<sourceSha256>.img beside its record.
// Invariants:
// - written under a temporary name (.tmp-PID), checked (validateImage), then renamed with its record: the cache never
//   holds an unchecked image; a failure removes the temporary file.
// - with the system xz and a size known from the xz index the output is a growing file that readers may follow
//   at once (image-handle.ts); it is settled DONE after the rename, FAILED on any error.
// - errors name the source as the user gave it (`label`), progress its file name: never the cache's names.
import { closeSync, openSync, rmSync, renameSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VerifyError } from '../errors.ts';
import { FileIO, SliceIO } from '../image/io.ts';
import { readTable } from '../image/partition-table.ts';
import { growingFile, settleGrowing, GrowingFileIO, DONE, FAILED, type GrowingFile } from '../image/growing-io.ts';
import type { OnProgress } from '../progress.ts';
import { writeJsonAtomic, type Cache, type ImageRecord } from './cache.ts';
import type { CatalogEntry } from './catalog.ts';
import { detectFormat, openDecoded, usesSystemXz, xzToFile, xzUncompressedSize, type XzDecoder } from './decompress.ts';
import { cachedImage, completeHandle, growingHandle, tableOf, type ImageTable, type ResolvedImage } from './image-handle.ts';
import { SparseWriter } from './sparse-writer.ts';
import { validateImage } from './validate.ts';

export interface DecodeOptions {
  onProgress?: OnProgress;
  signal?: AbortSignal;
  xz?: XzDecoder;
}

/** Enough of the image's start for its partition table: an MBR, or a GPT header and 128 entries. */
const TABLE_BYTES = 64 << 10;

/**
 * Decode a verified source into the cache and give its handle: as soon as a growing image's table can be read
 * (reads then follow xz), else once the image is complete.
 */
export async function decodeToCache(cache: Cache, sourcePath: string, sourceSha256: string, id: string, label: string, entry: CatalogEntry | undefined, opts: DecodeOptions): Promise<ResolvedImage> {
  const job = startDecoding(cache, sourcePath, sourceSha256, id, label, opts);
  const done = job.record.then((r) => cachedImage(cache.imagePath(sourceSha256), r, entry, false));
  done.catch(() => undefined);
  const table = job.growing && (await earlyTable(job.growing, label, done));
  // No table yet (no growing file, or its start does not read as one): the finished image says why, or has one.
  if (!job.growing || !table) return completeHandle(await done);
  return growingHandle({ id, entry, sourceSha256, growing: job.growing, table }, done);
}

/** Decompress a source into the cache (see the file header); resolves with its record once it is in place. */
export function decompressInto(cache: Cache, sourcePath: string, sourceSha256: string, id: string, label: string, opts: DecodeOptions = {}): Promise<ImageRecord> {
  return startDecoding(cache, sourcePath, sourceSha256, id, label, opts).record;
}

/** The table at the start of a growing image, once xz has written that far; undefined when it cannot be read. */
async function earlyTable(g: GrowingFile, label: string, settled: Promise<unknown>): Promise<ImageTable | undefined> {
  let over = false;
  settled.then(() => (over = true), () => (over = true));
  const want = Math.min(g.size, TABLE_BYTES);
  // Waited for here, not in a read (GrowingFileIO blocks its thread): progress and signals go on meanwhile.
  while (!over && sizeOf(g.path) < want) await sleep(10);
  try {
    const io = GrowingFileIO.open(g);
    try {
      return tableOf(readTable(new SliceIO(io, 0, io.size, label)));
    } finally {
      io.close();
    }
  } catch {
    return undefined;
  }
}

/** Size of a file, or Infinity once it is gone from that name (renamed into place, or removed). */
function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return Infinity;
  }
}

/** Start decoding: the growing file at once when readers can follow it, and the record once it is in place. */
function startDecoding(cache: Cache, sourcePath: string, sourceSha256: string, id: string, label: string, opts: DecodeOptions): { growing?: GrowingFile; record: Promise<ImageRecord> } {
  const format = detectFormat(sourcePath);
  const final = cache.imagePath(sourceSha256);
  const tmp = `${final}.tmp-${process.pid}`;
  const short = basename(label.replace(/[?#].*$/, '')) || id;
  let growing: GrowingFile | undefined;
  // Runs synchronously up to xz's start, so `growing` is set (or not) when this function returns.
  const record = (async () => {
    try {
      const out = usesSystemXz(format, opts.xz)
        ? await viaXz(sourcePath, tmp, label, short, opts, (total) => {
            // The file exists before anyone is told of it.
            closeSync(openSync(tmp, 'w', 0o644));
            growing = growingFile(tmp, final, total);
          })
        : await viaStream(sourcePath, format, tmp, label, short, opts);
      opts.onProgress?.({ phase: 'decompress', done: out.size, total: out.size, unit: 'bytes', detail: `${short} via ${decoderName(out.decoder)}` });
      const rec = recordImage(cache, tmp, out, { id, sourceSha256, format, decoder: out.decoder, label, member: out.member });
      if (growing) settleGrowing(growing, DONE);
      return rec;
    } catch (err) {
      if (growing) settleGrowing(growing, FAILED);
      rmSync(tmp, { force: true });
      throw err;
    }
  })();
  return { growing, record };
}

function decoderName(decoder: string): string {
  return decoder === 'xz' ? 'xz -dc' : decoder === 'wasm' ? 'WASM xz decoder' : decoder;
}

interface Decoded {
  size: number;
  dataBytes: number;
  decoder: string;
  member?: string;
}

/** `xz -dc` into `tmp`; `onStart` is called with the final size (from the xz index, when known) before xz starts. */
async function viaXz(sourcePath: string, tmp: string, label: string, short: string, opts: DecodeOptions, onStart: (total: number) => void): Promise<Decoded> {
  const total = xzUncompressedSize(sourcePath);
  const detail = `${short} via xz -dc`;
  const report = opts.onProgress;
  report?.({ phase: 'decompress', done: 0, total, unit: 'bytes', detail });
  if (total !== undefined) onStart(total);
  const out = await xzToFile(sourcePath, tmp, {
    name: label,
    signal: opts.signal,
    onBytes: report && ((n) => (total === undefined || n < total) && report({ phase: 'decompress', done: n, total, unit: 'bytes', detail })),
  });
  if (total !== undefined && out.size !== total) throw new VerifyError(`${label}: decompressed to ${out.size} bytes, its index says ${total}`);
  return { ...out, decoder: 'xz' };
}

async function viaStream(sourcePath: string, format: ImageRecord['format'], tmp: string, label: string, short: string, opts: DecodeOptions): Promise<Decoded> {
  const decoded = await openDecoded(sourcePath, format, { xz: opts.xz, signal: opts.signal, name: label });
  const detail = `${short} via ${decoderName(decoded.decoder)}`;
  const writer = new SparseWriter(tmp);
  try {
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
    const out = writer.finish();
    if (decoded.expectedSize !== undefined && out.size !== decoded.expectedSize) {
      throw new VerifyError(`${label}: decompressed to ${out.size} bytes, expected ${decoded.expectedSize}`);
    }
    return { ...out, decoder: decoded.decoder, member: decoded.member };
  } catch (err) {
    writer.abort();
    throw err;
  }
}

/** Check a finished temp image and its partition table, write its record, and rename both into place. */
export function recordImage(
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
      ...tableOf(mbr),
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
