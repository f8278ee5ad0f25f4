// When the compiled CLI a benchmark runs is stale: the newest mtime of the .ts sources under a directory.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The newest mtime of the .ts files under `dir`. */
export function newestTs(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestTs(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}
