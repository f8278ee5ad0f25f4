// Build benchmark on the realistic 3 GiB image (~1.4 GiB used): cold build of 4 nodes from the .img.xz (decompress
// into an empty cache + build) vs `xz -dc > /dev/null`, and warm build of 4 nodes from the cached base vs one
// `cp --sparse=always` of the base, timed in the same run, with the peak RSS of each pi-image run.
// Usage: npx tsx bench/build.ts [--runs N]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realisticImage } from './lib/realistic-image.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 1;
const now = () => Number(process.hrtime.bigint()) / 1e9;

/** Run a command under /usr/bin/time; wall seconds and max RSS in MB. */
function timed(cmd: string, args: string[], opts: { stdout?: 'ignore' } = {}): { secs: number; rssMB: number } {
  const t0 = now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { stdio: ['ignore', opts.stdout ?? 'ignore', 'pipe'], env: { ...process.env, CI: '1' } });
  const secs = now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  const kb = Number(r.stderr.toString().trim().split('\n').pop());
  return { secs, rssMB: kb / 1024 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const img = await realisticImage();
const work = mkdtempSync(join(ROOT, 'bench', '.tmp', 'build-'));
const cli = join(ROOT, 'bin', 'pi-image.js');
const common = ['--all', '--profile', join(ROOT, 'profiles', 'yarpi4.yaml'), '--secrets', join(work, 'secrets'), '--quiet'];
try {
  const xz: number[] = [];
  const cold: number[] = [];
  const cp: number[] = [];
  const cp4: number[] = [];
  const warm: number[] = [];
  let rss = 0;
  for (let i = 0; i < runs; i++) {
    const cache = join(work, `cache-${i}`);
    xz.push(timed('sh', ['-c', `xz -dc '${img.xz}' > /dev/null`]).secs);
    const c = timed(process.execPath, [cli, 'build', ...common, '--image', img.xz, '--cache', cache, '--out', join(work, `out-cold-${i}`)]);
    cold.push(c.secs);
    rmSync(join(work, `out-cold-${i}`), { recursive: true, force: true });
    const copy = join(work, 'cp.img');
    cp.push(timed('cp', ['--sparse=always', img.img, copy]).secs);
    rmSync(copy);
    // Context, not the target's baseline: one sparse copy per node (what a build without shared blocks must write).
    const copies = [1, 2, 3, 4].map((n) => join(work, `cp${n}.img`));
    cp4.push(timed('sh', ['-c', copies.map((c) => `cp --sparse=always '${img.img}' '${c}'`).join(' && ')]).secs);
    for (const c of copies) rmSync(c);
    const w = timed(process.execPath, [cli, 'build', ...common, '--image', img.xz, '--cache', cache, '--out', join(work, `out-warm-${i}`)]);
    warm.push(w.secs);
    rmSync(join(work, `out-warm-${i}`), { recursive: true, force: true });
    rss = Math.max(rss, c.rssMB, w.rssMB);
    rmSync(cache, { recursive: true, force: true });
  }
  const fmt = (n: number) => n.toFixed(2);
  console.log(`build bench: realistic 3 GiB image, 4 nodes, ${runs} run(s), medians; ${execFileSync('nproc').toString().trim()} cores`);
  console.log(`  xz -dc > /dev/null          ${fmt(median(xz))} s`);
  console.log(`  cold build (decompress+4)   ${fmt(median(cold))} s   ratio ${fmt(median(cold) / median(xz))}× xz -dc   (target ≤ 1.15×)`);
  console.log(`  cp --sparse=always of base  ${fmt(median(cp))} s`);
  console.log(`  4 × cp --sparse=always       ${fmt(median(cp4))} s   (context: one copy per node)`);
  console.log(`  warm build (4 nodes)        ${fmt(median(warm))} s   ratio ${fmt(median(warm) / median(cp))}× cp        (target ≤ 1.0×); ${fmt(median(warm) / median(cp4))}× 4 × cp`);
  console.log(`  peak RSS of pi-image        ${rss.toFixed(0)} MB        (target ≤ 150 MB)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
