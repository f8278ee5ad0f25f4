#!/usr/bin/env node
// Launcher. Runs the compiled CLI, bundled in dist/cli/ (what the published package holds; npm's `prepare` builds
// it in a checkout). Only in a checkout whose dist/ is missing or older than a TypeScript source (or the bundler)
// does it run the sources through tsx (a devDependency), so a checkout never runs stale code; the package itself
// never needs tsx.
import { existsSync, statSync, readdirSync } from 'node:fs';
import module from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Node 22.1+ keeps compiled code between runs (in the OS temp dir): startup then costs a fraction. A no-op before.
module.enableCompileCache?.();

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'cli', 'pi-image.js'); // the bundle (scripts/bundle.mjs)

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts') || e.name.endsWith('.mjs')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function distIsFresh() {
  const stamp = join(root, 'dist', '.built');
  if (!existsSync(compiled)) return false;
  if (!existsSync(join(root, 'lib'))) return true; // the installed package: no sources, dist/ is the program
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  // scripts/ holds the bundler: a change to it is a change to dist/cli/ too.
  return ['lib', 'bin', 'scripts'].every((d) => !existsSync(join(root, d)) || newestSource(join(root, d)) <= built);
}

if (process.env.PI_IMAGE_FROM_SOURCE !== '1' && distIsFresh()) {
  await import(compiled);
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write(
      `pi-image: ${existsSync(compiled) ? 'dist/ is older than the TypeScript sources' : 'dist/ is missing'} and tsx is not installed to run them\n` +
        `  In ${root}: npm run build (or npm ci, which builds it)\n`,
    );
    process.exit(1);
  }
  register();
  await import('./pi-image.ts');
}
