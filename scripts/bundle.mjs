// Bundles the CLI into dist/cli/ (npm run build, after tsc): the entry, the build's lane worker and one chunk per
// lazily imported command or library, so a command loads one file per part it uses instead of hundreds of modules.
// Why: Node 20 has no compile cache, and resolving and compiling yargs, zod and our modules file by file was most
// of `--help` and of the time before a build's first copy (README, "The CLI is bundled").
// Invariants: the library (dist/lib/, from tsc) is untouched; entries and chunks share one directory, so the
// `new URL('./worker.js', import.meta.url)` of lib/assemble/pool.ts finds the worker from whichever chunk holds it;
// packages loaded at run time by name (xz-decompress through createRequire, unzipper's optional S3 client) and the
// two that call the deprecated Buffer() (cpio-stream, unzipper) stay outside; string-width is
// lib/cli/text-width.ts (its header says why). dist/cli/inputs.json lists the sources of each output file.
import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// --outdir DIR: elsewhere (test/faults/sources.test.ts bundles a private copy).
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 ? resolve(process.argv[at + 1]) : join(root, 'dist', 'cli');
rmSync(outdir, { recursive: true, force: true });
const { metafile } = await build({
  absWorkingDir: root,
  entryPoints: { 'pi-image': 'bin/pi-image.ts', worker: 'lib/assemble/worker.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: '[name]-[hash]',
  // cpio-stream and unzipper (and their old stream helpers) call the deprecated Buffer(): Node warns about that
  // only outside node_modules, so they load from there, as the lazy parts they are.
  external: ['@aws-sdk/client-s3', 'xz-decompress', 'cpio-stream', 'unzipper'],
  alias: { 'string-width': './lib/cli/text-width.ts' },
  // CommonJS packages in an ES module bundle call require() for Node's built-ins: give every chunk one.
  banner: { js: "import { createRequire as __piImageRequire } from 'node:module'; const require = __piImageRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
// Which sources each output file holds: test/cli/help.test.ts reads it to check what --help loads.
const inputs = Object.fromEntries(Object.entries(metafile.outputs).map(([out, o]) => [relative(outdir, join(root, out)), Object.keys(o.inputs)]));
writeFileSync(join(outdir, 'inputs.json'), JSON.stringify(inputs));
