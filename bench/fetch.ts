// Benchmark: `pi-image images fetch URL` of the realistic 3 GiB image's .xz (single-stream xz -2, ~1.4 GiB used)
// from a local HTTP server on 127.0.0.1, through the real resolveImage path (download with sha256, xz -dc fed while
// downloading writing the sparse cache file, size checked against the xz index, partition table read), against
// `xz -dc FILE > /dev/null` of the same file. Rounds are interleaved (xz, fetch, xz, fetch...) so each fetch is
// compared with a baseline timed next to it on this shared machine; prints the per-round ratios, their median and
// spread (target <= 1.15x), and the peak RSS of the fetch (largest process of its tree from /usr/bin/time; target
// <= 150 MB). The CLI is the compiled one (tsc into bench/.tmp/fetch-dist, as `npm run build` makes for users);
// --tsx runs the TypeScript sources instead. Each fetched image is checked against the raw image (`cmp`, sparse).
// Also timed, for context: `xz -dc FILE > OUT` into a sparse file on the same disk (what writing the image costs
// any tool; the fetch does that plus the download and its sha256).
// Usage: npx tsx bench/fetch.ts [--runs N] [--wasm] [--tsx]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newestTs } from './lib/newest-ts.ts';
import { realisticImage } from './lib/realistic-image.ts';
import { sha256OfFile } from '../lib/source/hash.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 3;
const wasm = args.includes('--wasm');
const useTsx = args.includes('--tsx');
const now = (): number => Number(process.hrtime.bigint()) / 1e9;
const MiB = 2 ** 20;

/** Run a command under /usr/bin/time: wall seconds, and max RSS (MB) of the largest process of its tree. */
function timed(cmd: string, argv: string[]): { secs: number; rssMB: number; stdout: string } {
  const t0 = now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...argv], { encoding: 'utf8', maxBuffer: 16 * MiB, env: { ...process.env, CI: '1' } });
  const secs = now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  return { secs, rssMB: Number(r.stderr.trim().split('\n').pop()) / 1024, stdout: r.stdout };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The CLI entry to time: the compiled tree (rebuilt when a source is newer) or the sources under tsx. */
function cliEntry(): { argv: string[]; label: string } {
  if (useTsx) return { argv: ['--import', 'tsx', join(ROOT, 'bin', 'pi-image.ts')], label: 'TypeScript sources under tsx' };
  const out = join(ROOT, 'bench', '.tmp', 'fetch-dist');
  const stamp = join(out, '.built');
  if (!existsSync(stamp) || Math.max(newestTs(join(ROOT, 'lib')), newestTs(join(ROOT, 'bin'))) > statSync(stamp).mtimeMs) {
    const t0 = now();
    rmSync(out, { recursive: true, force: true });
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit' });
    writeFileSync(stamp, '');
    console.log(`compiled the CLI into ${out} in ${(now() - t0).toFixed(1)} s`);
  }
  return { argv: [join(out, 'bin', 'pi-image.js')], label: 'compiled CLI (tsc, as npm run build)' };
}

const t0 = now();
const image = await realisticImage();
const rawSize = statSync(image.img).size;
const xzSize = statSync(image.xz).size;
console.log(`image: ${(rawSize / 2 ** 30).toFixed(1)} GiB raw, ${(xzSize / MiB).toFixed(0)} MiB .xz (made or found in ${(now() - t0).toFixed(1)} s)`);
const cli = cliEntry();
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
const base: number[] = [];
const toDisk: number[] = [];
const ours: number[] = [];
let rss = 0;
let allocated = 0;
try {
  execFileSync('sh', ['-c', `cat "${image.xz}" > /dev/null`]); // both sides read the .xz from the page cache
  for (let i = 0; i < runs; i++) {
    base.push(timed('sh', ['-c', `xz -dc "${image.xz}" > /dev/null`]).secs);
    const out = join(work, 'xz-out.img');
    toDisk.push(timed('sh', ['-c', `xz -dc "${image.xz}" > "${out}"`]).secs);
    rmSync(out);
    execFileSync('sync');
    const cache = join(work, `cache-${i}`);
    const f = timed(process.execPath, [...cli.argv, 'images', 'fetch', url, '--cache', cache, '--json', ...(wasm ? ['--xz', 'wasm'] : [])]);
    ours.push(f.secs);
    rss = Math.max(rss, f.rssMB);
    const line = f.stdout.trim().split('\n').find((l) => l.startsWith('{"event":"result"'));
    if (!line) throw new Error(`no result from the fetch:\n${f.stdout}`);
    const result = JSON.parse(line) as { path: string; sourceSha256: string; size: number; decoder: string };
    if (result.sourceSha256 !== xzSha || result.size !== rawSize) throw new Error(`fetched image is not the one served: source sha256 ${result.sourceSha256} vs ${xzSha}, size ${result.size}`);
    const cmp = spawnSync('cmp', [image.img, result.path], { encoding: 'utf8' });
    if (cmp.status !== 0) throw new Error(`${result.path} differs from ${image.img}: ${cmp.stdout}${cmp.stderr}`);
    allocated = statSync(result.path).blocks * 512;
    console.log(`round ${i + 1}: xz -dc ${base[i].toFixed(1)} s, xz -dc > file ${toDisk[i].toFixed(1)} s, fetch ${ours[i].toFixed(1)} s (decoder ${result.decoder}), ratio ${(ours[i] / base[i]).toFixed(2)}x, ${f.rssMB.toFixed(0)} MB`);
    rmSync(cache, { recursive: true, force: true });
    execFileSync('sync'); // the next round does not pay for this round's writeback
  }
} finally {
  server.kill();
  rmSync(work, { recursive: true, force: true });
}

const ratios = ours.map((o, i) => o / base[i]);
const fmt = (n: number): string => n.toFixed(2);
console.log('');
console.log(`fetch bench: ${runs} interleaved round(s), ${cli.label}${wasm ? ', --xz wasm' : ''}; ${execFileSync('nproc').toString().trim()} cores, load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
console.log(`  xz -dc > /dev/null            median ${fmt(median(base))} s   (${base.map(fmt).join(', ')})`);
console.log(`  xz -dc > sparse file          median ${fmt(median(toDisk))} s   (${toDisk.map(fmt).join(', ')}), ratio ${fmt(median(toDisk.map((t, i) => t / base[i])))}x`);
console.log(`  pi-image images fetch URL     median ${fmt(median(ours))} s   (${ours.map(fmt).join(', ')})`);
console.log(`  ratio fetch / xz -dc          median ${fmt(median(ratios))}x  spread ${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))}x   (target <= 1.15x)`);
console.log(`  peak RSS of the fetch         ${rss.toFixed(0)} MB   (target <= 150 MB)`);
console.log(`  cached image: cmp-equal to the raw image; ${(allocated / MiB).toFixed(0)} MiB allocated of ${(rawSize / MiB).toFixed(0)} MiB (sparse)`);
