// Re-check the cache: every cached raw image against the sha256 recorded when it was made, every finished download
// against its recorded (and, for pinned catalog entries, published) sha256. A bad entry loses its record, so it is
// never used as valid again; `prune` then removes the bytes.
import { rmSync } from 'node:fs';
import { sha256OfFile } from './hash.ts';
import type { OnProgress } from '../progress.ts';
import { Cache } from './cache.ts';
import { listCatalog } from './catalog.ts';

export interface VerifyItem {
  kind: 'image' | 'download';
  path: string;
  id?: string;
  ok: boolean;
  expected: string;
  actual: string;
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
  for (const { path, record } of cache.listImages()) {
    const actual = await sha256OfFile(path, opts.onProgress, 'verify');
    const ok = actual === record.sha256;
    if (!ok) rmSync(cache.recordPath(record.sourceSha256), { force: true });
    items.push({ kind: 'image', path, id: record.id, ok, expected: record.sha256, actual });
  }
  for (const { path, record } of cache.listDownloads()) {
    const actual = await sha256OfFile(path, opts.onProgress, 'verify');
    const expected = (record.entryId && pinned.get(record.entryId)) || record.sha256;
    const ok = actual === expected && actual === record.sha256;
    if (!ok) rmSync(`${path}.json`, { force: true });
    items.push({ kind: 'download', path, id: record.entryId, ok, expected, actual });
  }
  return items;
}
