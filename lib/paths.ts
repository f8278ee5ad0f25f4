// Where the package's own data lives (profiles/, images/, cloud-init/) and which version it is: found by walking
// up from this module to pi-image's package.json, so it is right from the TypeScript sources, from the compiled
// dist/ tree, and when pi-image is installed inside another project (never the cwd's package.json).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): { dir: string; version: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      const json = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
      if (json.name === 'pi-image') return { dir, version: json.version ?? '0.0.0' };
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('pi-image: cannot find the package root (package.json) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const root = findRoot();

/** The pi-image package directory (holding package.json, profiles/, images/, cloud-init/). */
export const PACKAGE_ROOT = root.dir;

/** pi-image's own version, from its package.json (the one place it is written). */
export const PACKAGE_VERSION = root.version;
