// Benchmark: `pi-image images fetch URL` of the realistic 3 GiB image's .xz (single-stream xz -2, ~1.5 GiB used)
// from a local HTTP server on 127.0.0.1, through the real resolveImage path (download with sha256, xz -dc fed while
// downloading writing the sparse cache file, size checked against the xz index, partition table read), against
// `xz -dc FILE > /dev/null` of the same file, in alternating rounds (bench/lib/measure.ts): per-round ratios, their
// median and spread (target <= 1.15x), and the peak memory of the fetch's process tree (node + xz; target
// <= 150 MB). The CLI is the compiled one (bin/pi-image.js running dist/, rebuilt first when stale). Each fetched
// image is checked against the raw image (`cmp`) after its round, untimed. Also timed, for context:
// `xz -dc FILE > OUT` into a sparse file on the same disk (what writing the image costs any tool).
// `--other DIR` adds a side: `node DIR/bin/pi-image.js` (another compiled tree), timed in the same rounds.
// Usage: npx tsx bench/fetch.ts [--rounds N] [--wasm] [--other DIR]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { realisticImage } from './lib/realistic-image.ts';
import { sha256OfFile } from '../lib/source/hash.ts';
import { cli, machineLine, measure, memoryLine, ratioLine, rounds, roundsArg, sync, ROOT, startLine } from './lib/measure.ts';

const args = process.argv.slice(2);
const n = roundsArg(3);
const wasm = args.includes('--wasm');
const other = args.includes('--other') ? args[args.indexOf('--other') + 1] : undefined;
const MiB = 2 ** 20;

const image = await realisticImage();
const rawSize = statSync(image.img).size;
console.log(startLine('fetch'));
console.log(`image: ${(rawSize / 2 ** 30).toFixed(1)} GiB raw, ${(statSync(image.xz).size / MiB).toFixed(0)} MiB .xz`);
const pi = cli();
const xzSha = await sha256OfFile(image.xz);

// A plain static server for the one file, in its own process so its CPU is charged to neither side.
const server = spawn(process.execPath, ['-e', `
  const http = require('http'), fs = require('fs');
  const file = ${JSON.stringify(image.xz)}, size = fs.statSync(file).size;
  const s = http.createServer((q, r) => {
    r.writeHead(200, { 'Content-Length': size, 'Content-Type': 'application/octet-stream' });
    fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(r);
  });
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) => server.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
const url = `http://127.0.0.1:${port}/realistic.img.xz`;

mkdirSync(join(ROOT, 'bench', '.tmp'), { recursive: true });
const work = mkdtempSync(join(ROOT, 'bench', '.tmp', 'fetch-'));
try {
  execFileSync('sh', ['-c', `cat "${image.xz}" > /dev/null`]); // both sides read the .xz from the page cache
  const out = join(work, 'xz-out.img');
  const res = await rounds(n, [
    { name: 'xz -dc > /dev/null', run: () => measure('sh', ['-c', `xz -dc "${image.xz}" > /dev/null`]) },
    {
      name: 'xz -dc > sparse file',
      run: () => measure('sh', ['-c', `xz -dc "${image.xz}" > "${out}"`]),
      after: () => {
        rmSync(out, { force: true });
        sync();
      },
    },
    ...[
      { name: 'pi-image images fetch URL', argv: pi, cache: 'cache-' },
      ...(other ? [{ name: 'other images fetch URL', argv: [process.execPath, join(other, 'bin', 'pi-image.js')], cache: 'cache-other-' }] : []),
    ].map(({ name, argv, cache: prefix }) => ({
      name,
      run: (r: number) => measure(argv[0]!, [...argv.slice(1), 'images', 'fetch', url, '--cache', join(work, `${prefix}${r}`), '--json', ...(wasm ? ['--xz', 'wasm'] : [])]),
      after: (r: number) => {
        const cache = join(work, `${prefix}${r}`);
        const found = execFileSync('sh', ['-c', `ls "${cache}"/images/*.img`]).toString().trim();
        const cmp = spawnSync('cmp', [image.img, found], { encoding: 'utf8' });
        if (cmp.status !== 0) throw new Error(`${found} differs from ${image.img}: ${cmp.stdout}${cmp.stderr}`);
        rmSync(cache, { recursive: true, force: true });
        sync();
      },
    })),
  ]);
  console.log('');
  console.log(`  ${ratioLine(res, 'pi-image images fetch URL', 'xz -dc > /dev/null').text}   (target <= 1.15x)`);
  console.log(`  ${ratioLine(res, 'xz -dc > sparse file', 'xz -dc > /dev/null').text}   (context)`);
  console.log(`  ${memoryLine(res, 'pi-image images fetch URL').text}   (target <= 150 MB)`);
  if (other) console.log(`  ${ratioLine(res, 'other images fetch URL', 'xz -dc > /dev/null').text}   (${other})`);
  console.log(`  source sha256 ${xzSha.slice(0, 16)}..., every fetched image cmp-equal to the raw image; load at the end ${machineLine()}`);
} finally {
  server.kill();
  rmSync(work, { recursive: true, force: true });
}
