// Benchmark: `pi-image lock --fetch` (resolve everything, download the files, fetch every layer into the cache,
// sha256 over all of it) of a profile whose add-on images carry ≥ 1 GiB of random layers, from Debian's
// docker-registry (bearer tokens) and a file server on 127.0.0.1, against `curl` of the same blobs and files
// (one sequential shell of curl -o, tokens fetched beforehand). Rounds interleave (curl, lock, curl, lock…), each
// with an empty cache (the base image copied in first, outside the timing); prints per-round throughputs and
// ratios, median and spread (target >= 0.9x curl's speed), and the peak RSS of the lock's process tree (target
// <= 150 MB). Runs the compiled CLI (bench/.tmp/lock-dist; --tsx for the sources).
// Usage: npx tsx bench/lock.ts [--runs N] [--mib N] [--tsx]
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliEntry, now, timed } from './lib/timed-cli.ts';
import { makeUbuntuLookalike } from '../test/helpers/lookalike.ts';
import { startLockWorld, lockProfile } from '../test/helpers/lock-fixtures.ts';
import { decodeLock } from '../lib/lock/lockfile.ts';
import { parseImageRef, registryBase } from '../lib/lock/reference.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 3;
const mib = Number(args[args.indexOf('--mib') + 1]) || 350;
const useTsx = args.includes('--tsx');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

mkdirSync(join(ROOT, 'bench', '.tmp'), { recursive: true });
const work = mkdtempSync(join(ROOT, 'bench', '.tmp', 'lock-'));
const t0 = now();
const world = await startLockWorld(join(work, 'world'), { bigBytes: mib * 2 ** 20 });
const look = await makeUbuntuLookalike(join(work, 'base'), { extraRootFiles: { 'var/lib/dpkg/arch': 'arm64\n' } });
mkdirSync(join(work, 'p'));
const profile = join(work, 'p', 'pi-image.yaml');
writeFileSync(profile, lockProfile(world, look.img));
console.log(`world ready in ${(now() - t0).toFixed(1)} s`);
const cli = cliEntry('lock-dist', useTsx);
try {
  // A first lock tells what is there to fetch, and leaves a cache holding the base image to seed each round with.
  const seed = join(work, 'seed-cache');
  await timed(process.execPath, [...cli, 'lock', '--profile', profile, '--cache', seed, '--json']);
  const lock = decodeLock(readFileSync(join(work, 'p', 'pi-image.lock'), 'utf8'));
  const urls: { url: string; auth?: string; size: number }[] = [];
  const tokens = new Map<string, string>();
  for (const img of lock.images) {
    const ref = parseImageRef(img.id);
    if (!tokens.has(ref.name)) {
      const t = (await (await fetch(`${world.registry.token!.url}?service=pi-image-test-registry&scope=repository:${ref.name}:pull`)).json()) as { token: string };
      tokens.set(ref.name, t.token);
    }
    for (const b of [img.config, ...img.layers]) if (!urls.some((u) => u.url.endsWith(b.digest))) urls.push({ url: `${registryBase(ref.registry)}/v2/${ref.name}/blobs/${b.digest}`, auth: tokens.get(ref.name), size: b.size });
  }
  for (const f of lock.files) urls.push({ url: f.url, size: f.archive?.size ?? f.size });
  const bytes = urls.reduce((s, u) => s + u.size, 0);
  console.log(`${urls.length} downloads, ${(bytes / 2 ** 30).toFixed(2)} GiB`);
  const script = join(work, 'curl.sh');
  writeFileSync(
    script,
    'set -e\n' + urls.map((u, i) => `curl -sSf -L ${u.auth ? `-H 'Authorization: Bearer ${u.auth}' ` : ''}-o "$1/${i}" '${u.url}'`).join('\n') + '\n',
  );
  const base: number[] = [];
  const ours: number[] = [];
  let rss = 0;
  for (let i = 0; i < runs; i++) {
    const cdir = join(work, `curl-${i}`);
    mkdirSync(cdir);
    base.push((await timed('sh', [script, cdir])).secs);
    rmSync(cdir, { recursive: true, force: true });
    execFileSync('sync');
    const cache = join(work, `cache-${i}`);
    mkdirSync(cache);
    cpSync(join(seed, 'images'), join(cache, 'images'), { recursive: true });
    if (existsSync(join(seed, 'sources.json'))) cpSync(join(seed, 'sources.json'), join(cache, 'sources.json'));
    const r = await timed(process.execPath, [...cli, 'lock', '--fetch', '--profile', profile, '--cache', cache, '--json']);
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as { fetched: number };
    const layerBytes = [...new Map(lock.images.flatMap((m) => m.layers.map((l) => [l.digest, l.size] as const))).values()].reduce((a, b) => a + b, 0);
    if (result.fetched < layerBytes) throw new Error(`lock --fetch fetched only ${result.fetched} bytes`);
    ours.push(r.secs);
    rss = Math.max(rss, r.rssMB);
    console.log(`round ${i + 1}: curl ${base[i]!.toFixed(2)} s (${(bytes / 2 ** 20 / base[i]!).toFixed(0)} MiB/s), lock --fetch ${r.secs.toFixed(2)} s (${(bytes / 2 ** 20 / r.secs).toFixed(0)} MiB/s), speed ratio ${(base[i]! / r.secs).toFixed(2)}x, ${r.rssMB.toFixed(0)} MB`);
    rmSync(cache, { recursive: true, force: true });
    execFileSync('sync');
  }
  const ratios = ours.map((o, i) => base[i]! / o);
  console.log('');
  console.log(`lock bench: ${runs} interleaved round(s), ${(bytes / 2 ** 30).toFixed(2)} GiB in ${urls.length} downloads; ${execFileSync('nproc').toString().trim()} cores, load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
  console.log(`  curl (sequential)             median ${median(base).toFixed(2)} s   (${base.map((x) => x.toFixed(2)).join(', ')})`);
  console.log(`  pi-image lock --fetch         median ${median(ours).toFixed(2)} s   (${ours.map((x) => x.toFixed(2)).join(', ')})`);
  console.log(`  speed vs curl                 median ${median(ratios).toFixed(2)}x  spread ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x   (target >= 0.9x)`);
  console.log(`  peak RSS of lock --fetch      ${rss.toFixed(0)} MB   (target <= 150 MB)`);
} finally {
  await world.close();
  rmSync(work, { recursive: true, force: true });
}
