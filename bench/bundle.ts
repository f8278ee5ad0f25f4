// Benchmark: a warm `pi-image build --all` with the bundle against the same build without one. The bundle's cost
// should be its bytes written and nothing more: the extra time of a build with a lock (its artifacts already in
// the cache, so `--offline`) is set against `cp` writing the very same bytes (each node's bundle tar, made once
// beforehand from the same plan) into the same file system. Three sides in alternating rounds (bench/lib/measure.ts:
// the order flips each round), each build into a fresh out/: per round the ratio
// (with − without) / cp-time-of-the-bundle-bytes (1 = the bundle costs exactly what writing its bytes costs),
// its median and spread, CPU seconds, and the peak memory of each build's whole process tree (target <= 150 MB).
// The base image is the test lookalike (small), so the rest of the build is short and the bundle's share visible;
// the servers (registry, files) run in a process of their own (lib/lock-world.ts) and are only used to warm up.
// Runs the compiled CLI (dist/, rebuilt first when stale).
// Usage: npx tsx bench/bundle.ts [--rounds N] [--mib N]
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cli, machineLine, measure, median, memoryLine, rounds, roundsArg, sync, ROOT, startLine } from './lib/measure.ts';
import { startWorldProcess } from './lib/lock-world.ts';
import { decodeLock } from '../lib/lock/lockfile.ts';
import { prepareBundles } from '../lib/lock/prepare.ts';
import { bundleChunks } from '../lib/lock/bundle.ts';
import { loadProfile } from '../lib/cluster/profile.ts';

const args = process.argv.slice(2);
const n = roundsArg(5);
const mib = Number(args[args.indexOf('--mib') + 1]) || 128;
const f2 = (x: number): string => x.toFixed(2);
const spread = (xs: number[]): string => `${f2(Math.min(...xs))}-${f2(Math.max(...xs))}`;
/** Every build with the same timestamp, so the builds write the same bytes each round. */
const env = { SOURCE_DATE_EPOCH: '1577836800' };

console.log(startLine('bundle'));
const pi = cli();
mkdirSync(join(ROOT, 'bench', '.tmp'), { recursive: true });
const work = mkdtempSync(join(ROOT, 'bench', '.tmp', 'bundle-'));
const world = await startWorldProcess(join(work, 'world'), mib);
try {
  // Two profile directories with the same profile: one gets a lock, the other none.
  const withDir = dirname(world.profile);
  const withoutDir = join(work, 'without');
  mkdirSync(withoutDir);
  copyFileSync(world.profile, join(withoutDir, 'pi-image.yaml'));
  const cache = join(work, 'cache');
  const secrets = join(work, 'secrets');
  const build = (dir: string, out: string, extra: string[] = []) =>
    measure(pi[0]!, [...pi.slice(1), 'build', '--all', '--profile', join(dir, 'pi-image.yaml'), '--cache', cache, '--secrets', secrets, '--out', out, '--json', ...extra], { env });
  await measure(pi[0]!, [...pi.slice(1), 'lock', '--no-apt', '--profile', world.profile, '--cache', cache, '--json']);
  // Warm-up, outside the timing: the first build with the lock fetches its artifacts, makes the image archives and
  // learns the bundled images' checksums; one without warms the base image's decoded copy. From here on both are
  // warm.
  for (const [dir, extra] of [[withDir, []], [withDir, ['--offline']], [withoutDir, []]] as const) {
    await build(dir, join(work, 'warm'), [...extra]);
    rmSync(join(work, 'warm'), { recursive: true, force: true });
  }
  // What the warm builds can take instead of hashing: the bundled images' sums kept beside the base image.
  const sumsFile = readdirSync(join(cache, 'images')).find((f) => f.includes('.ssd-checksums-'));
  const bundledKnown = sumsFile ? ((JSON.parse(readFileSync(join(cache, 'images', sumsFile), 'utf8')) as { bundled?: unknown[] }).bundled ?? []).length : 0;
  console.log(`bundled images with their checksums kept after the warm-up: ${bundledKnown}`);
  // The same bytes build writes as p2 of each node's SSD image, as files (from the same plan), for `cp`.
  const lockPath = join(withDir, 'pi-image.lock');
  const lock = decodeLock(readFileSync(lockPath, 'utf8'));
  const { profile } = await loadProfile(world.profile);
  const plans = await prepareBundles(lock, lockPath, profile, { cacheDir: cache, offline: true });
  const tars: string[] = [];
  let bundleBytes = 0;
  for (const node of profile.nodes) {
    const plan = plans[node.role];
    const f = join(work, `bundle-${node.name}.tar`);
    const fd = openSync(f, 'w');
    for (const c of bundleChunks(plan)) writeSync(fd, c);
    closeSync(fd);
    tars.push(f);
    bundleBytes += plan.size;
  }
  console.log(`bundles: ${tars.length} nodes, ${bundleBytes} bytes (${(bundleBytes / 2 ** 20).toFixed(1)} MiB) in all`);
  const cleanup = (p: string) => () => {
    rmSync(p, { recursive: true, force: true });
    sync();
  };
  const res = await rounds(n, [
    { name: 'without', run: (r) => build(withoutDir, join(work, `out-without-${r}`)), after: (r) => cleanup(join(work, `out-without-${r}`))() },
    {
      name: 'with bundle',
      run: async (r) => {
        const m = await build(withDir, join(work, `out-with-${r}`), ['--offline']);
        const manifest = JSON.parse(readFileSync(join(work, `out-with-${r}`, 'manifest.json'), 'utf8')) as { nodes: Record<string, { bundle?: { size: number } }> };
        const carried = Object.values(manifest.nodes).reduce((s, x) => s + (x.bundle?.size ?? 0), 0);
        if (carried !== bundleBytes) throw new Error(`the build carried ${carried} bundle bytes, the plan says ${bundleBytes}`);
        return m;
      },
      after: (r) => cleanup(join(work, `out-with-${r}`))(),
    },
    {
      name: 'cp',
      run: (r) => {
        mkdirSync(join(work, `cp-${r}`));
        return measure('cp', [...tars, join(work, `cp-${r}`)]);
      },
      after: (r) => cleanup(join(work, `cp-${r}`))(),
    },
  ]);
  const [without, withB, cp] = res.runs as [typeof res.runs[0], typeof res.runs[0], typeof res.runs[0]];
  const ratios = withB.map((w, i) => (w.secs - without[i]!.secs) / cp[i]!.secs);
  const cpuRatios = withB.map((w, i) => (w.cpuSecs - without[i]!.cpuSecs) / cp[i]!.cpuSecs);
  const med = (ms: typeof cp, k: 'secs' | 'cpuSecs' = 'secs') => median(ms.map((m) => m[k]));
  console.log('');
  console.log(`bundle bench: ${n} alternating rounds, ${profile.nodes.length} nodes, bundle ${bundleBytes} bytes (${(bundleBytes / 2 ** 20).toFixed(1)} MiB); load now ${machineLine().split('load ')[1]}`);
  console.log(`  build --all, no lock            median ${f2(med(without))} s   spread ${spread(without.map((m) => m.secs))}   CPU ${f2(med(without, 'cpuSecs'))} s`);
  console.log(`  build --all --offline, bundle   median ${f2(med(withB))} s   spread ${spread(withB.map((m) => m.secs))}   CPU ${f2(med(withB, 'cpuSecs'))} s`);
  console.log(`  difference of the medians       ${f2(med(withB) - med(without))} s   CPU ${f2(med(withB, 'cpuSecs') - med(without, 'cpuSecs'))} s`);
  console.log(`  cp of the same bytes            median ${f2(med(cp))} s   spread ${spread(cp.map((m) => m.secs))}   (${(bundleBytes / 2 ** 20 / med(cp)).toFixed(0)} MiB/s)   CPU ${f2(med(cp, 'cpuSecs'))} s`);
  console.log(`  (with - without) / cp, per round: median ${f2(median(ratios))}, spread ${spread(ratios)}   (1 = the bundle costs what writing its bytes costs)`);
  console.log(`  the same in CPU seconds, per round: median ${f2(median(cpuRatios))}, spread ${spread(cpuRatios)}`);
  console.log(`  ${memoryLine(res, 'without').text}`);
  console.log(`  ${memoryLine(res, 'with bundle').text}   (target <= 150 MB)`);
} finally {
  await world.close();
  rmSync(work, { recursive: true, force: true });
}
