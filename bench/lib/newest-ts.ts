// For benches that time the compiled tree: the newest mtime of the TypeScript sources under a folder, so a
// compiled copy older than its sources is rebuilt.
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
