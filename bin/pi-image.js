#!/usr/bin/env node
// Launcher. Runs the compiled CLI from dist/ when it is there and newer than every TypeScript source (npm's
// `prepare` builds it); otherwise registers tsx and runs the sources as they are, so a checkout never runs stale code.
import { existsSync, statSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'bin', 'pi-image.js');

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
  if (!existsSync(compiled) || !existsSync(stamp)) return false;
  if (!existsSync(join(root, 'lib'))) return true; // installed package without sources
  const built = statSync(stamp).mtimeMs;
  return newestSource(join(root, 'lib')) <= built && newestSource(join(root, 'bin')) <= built;
}

if (process.env.PI_IMAGE_FROM_SOURCE !== '1' && distIsFresh()) {
  await import(compiled);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./pi-image.ts');
}
