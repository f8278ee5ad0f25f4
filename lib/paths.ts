// Where the package's own data lives (profiles/, images/, cloud-init/): found by walking up from this module to
// package.json, so it is right both from the TypeScript sources and from the compiled dist/ tree.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'pi-image') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('pi-image: cannot find the package root (package.json) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The pi-image package directory (holding package.json, profiles/, images/, cloud-init/). */
export const PACKAGE_ROOT = findRoot();
