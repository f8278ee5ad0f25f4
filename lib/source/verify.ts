// Re-check the cache. Every finished download against its recorded (and, for pinned catalog entries, published)
// sha256; every cached raw image by decoding its source again (a verified download, or a local file seen before)
// and comparing byte for byte, which names the first byte that differs. A bad entry loses its record, so it is never
// used as valid again; `prune` then removes the bytes. An image whose source is gone (pruned downloads) cannot be
// checked: it is reported as such, not as bad.
import { rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { sha256OfFile } from './hash.ts';
import type { OnProgress } from '../progress.ts';
import { Cache, type ImageRecord } from './cache.ts';
import { listCatalog } from './catalog.ts';
import { detectFormat, openDecoded } from './decompress.ts';

export interface VerifyItem {
  kind: 'image' | 'download';
  path: string;
  id?: string;
  /** true: checked and good; false: checked and bad (its record was removed); null: nothing to check it against. */
  ok: boolean | null;
  /** What was checked, or what was wrong. */
  detail: string;
}

/** Verify everything in the cache; bad entries have their record removed. */
export async function verifyCache(opts: { cacheDir?: string; catalogDir?: string; onProgress?: OnProgress } = {}): Promise<VerifyItem[]> {
  const cache = new Cache(opts.cacheDir);
  const pinned = new Map<string, string>();
  try {
    for (const e of listCatalog(opts.catalogDir)) if (e.sha256) pinned.set(e.id, e.sha256);
  } catch {
    /* a broken catalog does not stop a cache check */
  }
  const items: VerifyItem[] = [];
  const goodSources = new Map<string, string>(); // source sha256 -> a file with those bytes
  for (const { path, record } of cache.listDownloads()) {
    const actual = await sha256OfFile(path, opts.onProgress, 'verify');
    const expected = (record.entryId && pinned.get(record.entryId)) || record.sha256;
    const ok = actual === expected && actual === record.sha256;
    if (ok) goodSources.set(actual, path);
    else rmSync(`${path}.json`, { force: true });
    items.push({ kind: 'download', path, id: record.entryId, ok, detail: ok ? `sha256 ${actual}` : `sha256 ${actual}, expected ${expected}` });
  }
  for (const { path, record } of cache.listImages()) {
    const source = goodSources.get(record.sourceSha256) ?? cache.localPaths(record.sourceSha256)[0];
    if (!source) {
      items.push({ kind: 'image', path, id: record.id, ok: null, detail: 'not checked: its source file is no longer here (downloads pruned?); fetch it again to check' });
      continue;
    }
    const diff = await compareWithSource(path, record, source, opts.onProgress);
    if (diff) rmSync(cache.recordPath(record.sourceSha256), { force: true });
    items.push({ kind: 'image', path, id: record.id, ok: !diff, detail: diff ?? `equal to ${basename(source)} decoded (${record.size} bytes)` });
  }
  return items;
}

/** Decode `source` and compare it with the cached image: undefined when equal, else what differs. */
async function compareWithSource(path: string, record: ImageRecord, source: string, onProgress?: OnProgress): Promise<string | undefined> {
  const fh = await open(path, 'r');
  const decoded = await openDecoded(source, detectFormat(source));
  let buf = Buffer.allocUnsafe(1 << 20);
  let pos = 0;
  let last = 0;
  try {
    for await (const chunk of decoded.stream) {
      if (buf.length < chunk.length) buf = Buffer.allocUnsafe(chunk.length);
      const { bytesRead } = await fh.read(buf, 0, chunk.length, pos);
      const n = Math.min(bytesRead, chunk.length);
      if (n < chunk.length || !buf.subarray(0, n).equals(chunk)) {
        let at = 0;
        while (at < n && buf[at] === chunk[at]) at++;
        return at < n ? `differs from its source ${basename(source)} at byte ${pos + at}` : `is ${pos + n} bytes long, its source ${basename(source)} decodes to more`;
      }
      pos += n;
      if (onProgress && Date.now() - last > 200) {
        last = Date.now();
        onProgress({ phase: 'verify', done: pos, total: record.size, unit: 'bytes', detail: basename(path) });
      }
    }
    await decoded.finished();
    const size = (await fh.stat()).size;
    return size === pos ? undefined : `is ${size} bytes long, its source ${basename(source)} decodes to ${pos}`;
  } finally {
    // Stop a decoder still running after a difference was found (xz is killed when its stdout is destroyed).
    (decoded.stream as { destroy?: () => void }).destroy?.();
    await fh.close();
  }
}
