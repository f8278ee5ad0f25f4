// Benchmark: `pi-image images fetch` of the realistic 3 GiB image's .xz from a local HTTP server (download with
// sha256, decompress into the sparse cache, hash the raw image, read the partition table) against
// `xz -dc FILE > /dev/null` of the same file, timed in the same run; prints the ratio (target <= 1.15x) and the
// fetch's peak memory (max RSS of the child, from /usr/bin/time -v; target <= 150 MB).
// Usage: npx tsx bench/fetch.ts [--rounds N] [--wasm]
import { spawn, spawnSync } from 'node:child_process';
import { statSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realisticImage } from './lib/realistic-image.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const rounds = Number(args[args.indexOf('--rounds') + 1]) || 2;
const wasm = args.includes('--wasm');

interface Run {
  seconds: number;
  maxRssKb: number;
}

/** Run a command under /usr/bin/time -v: wall seconds and the child's max RSS. */
function timed(cmd: string[], env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync('/usr/bin/time', ['-v', ...cmd], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr)!;
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  const maxRssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)![1]);
  return { seconds, maxRssKb };
}

const image = await realisticImage();
const xzSize = statSync(image.xz).size;

// A plain static server for the one file, in its own process so its CPU is not charged to the fetch or to us.
const serverProc = spawn(process.execPath, ['-e', `
  const http = require('http'), fs = require('fs');
  const size = fs.statSync(${JSON.stringify(image.xz)}).size;
  const s = http.createServer((q, r) => { r.writeHead(200, {'Content-Length': size}); fs.createReadStream(${JSON.stringify(image.xz)}, {highWaterMark: 1 << 20}).pipe(r); });
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) => serverProc.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
const fetchUrl = `http://127.0.0.1:${port}/realistic.img.xz`;

const base: Run[] = [];
const ours: Run[] = [];
try {
  for (let i = 0; i < rounds; i++) {
    base.push(timed(['sh', '-c', `xz -dc "${image.xz}" > /dev/null`]));
    const cache = mkdtempSync(join(tmpdir(), 'pi-image-bench-fetch-'));
    try {
      ours.push(timed([process.execPath, '--import', 'tsx', join(root, 'bin/pi-image.ts'), 'images', 'fetch', fetchUrl, '--cache', cache, '--json', ...(wasm ? ['--xz', 'wasm'] : [])]));
      const img = join(cache, 'images');
      const f = spawnSync('sh', ['-c', `du -k "${img}"/*.img | cut -f1`], { encoding: 'utf8' }).stdout.trim();
      if (i === 0) console.log(`cached image: ${(Number(f) / 1024).toFixed(0)} MiB allocated of ${(statSync(image.img).size / 2 ** 20).toFixed(0)} MiB (sparse)`);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  }
} finally {
  serverProc.kill();
}

const best = (xs: Run[]): Run => xs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
const b = best(base);
const o = best(ours);
const peakMb = Math.max(...ours.map((r) => r.maxRssKb)) / 1024;
console.log(`image: ${(statSync(image.img).size / 2 ** 30).toFixed(1)} GiB raw, ${(xzSize / 2 ** 20).toFixed(0)} MiB xz`);
console.log(`xz -dc > /dev/null:             ${base.map((r) => r.seconds.toFixed(1)).join(', ')} s (best ${b.seconds.toFixed(1)} s)`);
console.log(`pi-image images fetch${wasm ? ' --xz wasm' : ''}:     ${ours.map((r) => r.seconds.toFixed(1)).join(', ')} s (best ${o.seconds.toFixed(1)} s)`);
console.log(`ratio fetch / xz -dc: ${(o.seconds / b.seconds).toFixed(2)}x (target <= 1.15x)`);
console.log(`peak memory of the fetch: ${peakMb.toFixed(0)} MB (target <= 150 MB)`);
