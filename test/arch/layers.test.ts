// The layer order of lib/: every import in lib/ (static, `export … from`, and dynamic `import('…')`) goes to the
// same folder or to a lower layer, never up. A failure names the importing file, the import and both layers.
// The order (lowest first); folders on one rank are siblings and do not import each other:
//   0 errors.ts, progress.ts, paths.ts, pid.ts   what every layer may use
//   1 image/                                     partition tables, filesystems, bmap, positional I/O
//   2 source/                                    the catalog, download, decompress, the source cache
//   3 pi/, cloud-init/                           Pi boot files; cloud-init formats (plain input in, text out)
//   4 cluster/                                   profile, secrets, per-node plan and seed
//   5 lock/                                      pi-image.lock and the bundles it pins
//   6 assemble/, flash/, netboot/, inspect/      the pipelines
//   7 cli/                                       commands, options, output
//   8 index.ts                                   the library's public surface
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIB = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'lib');

const RANKS: Record<string, number> = {
  'errors.ts': 0, 'progress.ts': 0, 'paths.ts': 0, 'pid.ts': 0,
  image: 1,
  source: 2,
  pi: 3, 'cloud-init': 3,
  cluster: 4,
  lock: 5,
  assemble: 6, flash: 6, netboot: 6, inspect: 6,
  cli: 7,
  'index.ts': 8,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|mts|mjs|js)$/.test(e.name) ? [p] : [];
  });
}

/** The top-level entry of lib/ a path belongs to: a folder name or a file name. */
const unit = (path: string) => relative(LIB, path).split('/')[0]!;

/** Every module specifier a file imports, with its line number. Comments are blanked first. */
function imports(file: string): { spec: string; line: number }[] {
  const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (c) => c.replace(/[^\n]/g, ' '));
  const found: { spec: string; line: number }[] = [];
  const re = /\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|\bimport\s+['"]([^'"]+)['"]/g;
  for (const m of text.matchAll(re)) {
    found.push({ spec: (m[1] ?? m[2] ?? m[3])!, line: text.slice(0, m.index).split('\n').length });
  }
  return found;
}

const files = sources(LIB);

test('every entry of lib/ has a rank in the layer order', () => {
  const unranked = [...new Set(files.map(unit))].filter((u) => !(u in RANKS));
  assert.equal(unranked, [], `lib/ entries with no layer (add them to RANKS in test/arch/layers.test.ts): ${unranked.join(', ')}`);
});

test('the import scanner sees static, type-only, re-export and dynamic imports', () => {
  const seen = imports(join(LIB, 'index.ts')).map((i) => i.spec);
  assert.ok(seen.some((s) => s.startsWith('./')), 'index.ts re-exports from its folders');
  const seed = imports(join(LIB, 'cli', 'commands', 'seed.ts')).map((i) => i.spec);
  assert.ok(seed.includes('../../cluster/seed.ts'), `a dynamic import('…') is seen: ${seed.join(', ')}`);
  const types = imports(join(LIB, 'cluster', 'plan.ts')).map((i) => i.spec);
  assert.ok(types.includes('./secrets.ts'), `an \`import type\` is seen: ${types.join(', ')}`);
});

test('nothing in lib/ imports a higher layer, and siblings do not import each other', () => {
  const bad: string[] = [];
  for (const file of files) {
    const from = unit(file);
    for (const { spec, line } of imports(file)) {
      if (!spec.startsWith('.')) continue; // node: builtins and npm packages
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(LIB + '/')) {
        bad.push(`lib/${relative(LIB, file)}:${line} imports '${spec}', outside lib/`);
        continue;
      }
      const to = unit(target);
      if (to === from) continue;
      const [a, b] = [RANKS[from], RANKS[to]];
      if (a === undefined || b === undefined) continue; // reported by the first test
      if (b >= a) bad.push(`lib/${relative(LIB, file)}:${line} imports '${spec}': ${from} (layer ${a}) must not import ${to} (layer ${b})`);
    }
  }
  assert.equal(bad, [], `upward imports:\n${bad.join('\n')}`);
});

test.run();
