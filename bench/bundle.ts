// Benchmark: a warm `pi-image build --all` with the bundle against one without. The bundle's cost should be its
// bytes written and nothing more: the extra time of a build with a lock (its artifacts already in the cache, so
// `--offline`) is compared with `cp` writing the very same bytes (each node's bundle tar, made once beforehand from
// the same plan) into the same file system, timed in the same rounds. Rounds alternate (without, with, cp, …), each
// build into a fresh out/; prints per-round times, median and spread, the bundle bytes, the ratio
// (with − without) / cp-time-of-the-bundle-bytes (1 = the bundle costs exactly what writing its bytes costs), and
// the peak RSS of each build's process tree (/usr/bin/time: the child and its waited-for descendants). A build with
// a bundle also hashes its bytes (the bmap's ranges and the image's whole sha256 both cover p2), so `sha256sum` of
// the same bytes is timed too, and the difference is set against cp + 2 sha256 passes as well.
// The base image is the test lookalike (small), so the rest of the build is short and the bundle's share visible.
// Runs the compiled CLI (bench/.tmp/bundle-dist; --tsx for the sources).
// Usage: npx tsx bench/bundle.ts [--runs N] [--mib N] [--tsx]
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliEntry, now, timed as timedRun } from './lib/timed-cli.ts';
import { makeUbuntuLookalike } from '../test/helpers/lookalike.ts';
import { startLockWorld, lockProfile } from '../test/helpers/lock-fixtures.ts';
import { decodeLock } from '../lib/lock/lockfile.ts';
import { prepareBundles } from '../lib/lock/prepare.ts';
import { bundleChunks } from '../lib/lock/bundle.ts';
import { loadProfile } from '../lib/cluster/profile.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 5;
const mib = Number(args[args.indexOf('--mib') + 1]) || 64;
const useTsx = args.includes('--tsx');
/** Every command with the same timestamp, so the builds write the same bytes each round. */
const timed = (cmd: string, argv: string[]) => timedRun(cmd, argv, { SOURCE_DATE_EPOCH: '1577836800' });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const spread = (xs: number[], d = 2): string => `${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}`;

mkdirSync(join(ROOT, 'bench', '.tmp'), { recursive: true });
const work = mkdtempSync(join(ROOT, 'bench', '.tmp', 'bundle-'));
const t0 = now();
const world = await startLockWorld(join(work, 'world'), { bigBytes: mib * 2 ** 20 });
const look = await makeUbuntuLookalike(join(work, 'base'), { extraRootFiles: { 'var/lib/dpkg/arch': 'arm64\n' } });
// Two profile directories with the same profile: one gets a lock, the other none.
const withDir = join(work, 'with');
const withoutDir = join(work, 'without');
for (const d of [withDir, withoutDir]) {
  mkdirSync(d);
  writeFileSync(join(d, 'pi-image.yaml'), lockProfile(world, look.img));
}
const cache = join(work, 'cache');
const secrets = join(work, 'secrets');
console.log(`world ready in ${(now() - t0).toFixed(1)} s`);
const cli = cliEntry('bundle-dist', useTsx);
const build = (dir: string, out: string, extra: string[] = []) =>
  timed(process.execPath, [...cli, 'build', '--all', '--profile', join(dir, 'pi-image.yaml'), '--cache', cache, '--secrets', secrets, '--out', out, '--json', ...extra]);
try {
  await timed(process.execPath, [...cli, 'lock', '--profile', join(withDir, 'pi-image.yaml'), '--cache', cache, '--json']);
  // Warm-up, outside the timing: the first build with the lock fetches its artifacts and makes the image archives;
  // one without warms the base image's decoded copy. From here on both are warm.
  await build(withDir, join(work, 'warm-with'));
  await build(withoutDir, join(work, 'warm-without'));
  rmSync(join(work, 'warm-with'), { recursive: true, force: true });
  rmSync(join(work, 'warm-without'), { recursive: true, force: true });
  // The same bytes build writes as p2 of each node's SSD image, as files (from the same plan), for `cp`.
  const lockPath = join(withDir, 'pi-image.lock');
  const lock = decodeLock(readFileSync(lockPath, 'utf8'));
  const { profile } = await loadProfile(join(withDir, 'pi-image.yaml'));
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
  console.log(`bundles: ${tars.length} nodes, ${(bundleBytes / 2 ** 20).toFixed(1)} MiB in all`);
  const without: number[] = [];
  const withB: number[] = [];
  const cp: number[] = [];
  const hashing: number[] = [];
  let rssWith = 0;
  let rssWithout = 0;
  for (let i = 0; i < runs; i++) {
    const a = await build(withoutDir, join(work, `out-without-${i}`));
    rmSync(join(work, `out-without-${i}`), { recursive: true, force: true });
    const b = await build(withDir, join(work, `out-with-${i}`), ['--offline']);
    const manifest = JSON.parse(readFileSync(join(work, `out-with-${i}`, 'manifest.json'), 'utf8')) as { nodes: Record<string, { bundle?: { size: number } }> };
    const carried = Object.values(manifest.nodes).reduce((s, n) => s + (n.bundle?.size ?? 0), 0);
    if (carried !== bundleBytes) throw new Error(`the build carried ${carried} bundle bytes, the plan says ${bundleBytes}`);
    rmSync(join(work, `out-with-${i}`), { recursive: true, force: true });
    const dest = join(work, `cp-${i}`);
    mkdirSync(dest);
    const c = await timed('cp', [...tars, dest]);
    rmSync(dest, { recursive: true, force: true });
    const h = await timed('sha256sum', tars);
    hashing.push(h.secs);
    without.push(a.secs);
    withB.push(b.secs);
    cp.push(c.secs);
    rssWith = Math.max(rssWith, b.rssMB);
    rssWithout = Math.max(rssWithout, a.rssMB);
    console.log(`round ${i + 1}: without ${a.secs.toFixed(2)} s, with ${b.secs.toFixed(2)} s (+${(b.secs - a.secs).toFixed(2)} s), cp of the bundle bytes ${c.secs.toFixed(2)} s (${(bundleBytes / 2 ** 20 / c.secs).toFixed(0)} MiB/s), sha256sum ${h.secs.toFixed(2)} s; ${a.rssMB.toFixed(0)} / ${b.rssMB.toFixed(0)} MB`);
  }
  const ratios = withB.map((w, i) => (w - without[i]!) / cp[i]!);
  const ratiosHashed = withB.map((w, i) => (w - without[i]!) / (cp[i]! + 2 * hashing[i]!));
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log('');
  console.log(`bundle bench: ${runs} alternating round(s), ${profile.nodes.length} nodes, bundle ${bundleBytes} bytes (${(bundleBytes / 2 ** 20).toFixed(1)} MiB); ${execFileSync('nproc').toString().trim()} cores, load ${load}`);
  console.log(`  build --all, no lock            median ${median(without).toFixed(2)} s   spread ${spread(without)}`);
  console.log(`  build --all --offline, bundle   median ${median(withB).toFixed(2)} s   spread ${spread(withB)}`);
  console.log(`  difference                      median ${(median(withB) - median(without)).toFixed(2)} s`);
  console.log(`  cp of the same bytes            median ${median(cp).toFixed(2)} s   spread ${spread(cp)}   (${(bundleBytes / 2 ** 20 / median(cp)).toFixed(0)} MiB/s)`);
  console.log(`  (with - without) / cp           median ${median(ratios).toFixed(2)}   spread ${spread(ratios)}   per round (1 = the bundle costs what writing its bytes costs)`);
  console.log(`  sha256sum of the same bytes     median ${median(hashing).toFixed(2)} s   spread ${spread(hashing)}`);
  console.log(`  (with - without) / (cp + 2 sha) median ${median(ratiosHashed).toFixed(2)}   spread ${spread(ratiosHashed)}   per round`);
  console.log(`  peak RSS, process tree          without ${rssWithout.toFixed(0)} MB, with ${rssWith.toFixed(0)} MB   (target <= 150 MB)`);
} finally {
  await world.close();
  rmSync(work, { recursive: true, force: true });
}
