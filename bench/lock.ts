// Benchmark: `pi-image lock --fetch --no-apt` (resolve everything, download the files, fetch every layer into the
// cache, sha256 over all of it) of a profile whose add-on images carry ≥ 1 GiB of random layers, from Debian's
// docker-registry (bearer tokens) and a file server on 127.0.0.1 (in a process of their own: lib/lock-world.ts),
// against `curl` of the same blobs and files (one sequential shell of curl -o, tokens fetched beforehand, outside
// the timing). Rounds alternate (bench/lib/measure.ts: the order flips each round), each lock with an empty cache
// (the base image copied in first, untimed); prints per-round times, the speed ratio curl-time / lock-time per
// round, its median and spread (target >= 0.9x), CPU seconds of both, and the peak memory of the lock's whole
// process tree (target <= 150 MB). The OS packages are left out (--no-apt): another bench's (apt-closure.ts).
// Runs the compiled CLI (dist/, rebuilt first when stale).
// `--other DIR` adds a third side: `node DIR/bin/pi-image.js` (another compiled tree, e.g. an earlier commit's
// dist/), timed in the same rounds, for a before/after comparison under the same load.
// Usage: npx tsx bench/lock.ts [--rounds N] [--mib N] [--other DIR]
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cli, machineLine, measure, median, memoryLine, rounds, roundsArg, sync, ROOT, startLine } from './lib/measure.ts';
import { startWorldProcess } from './lib/lock-world.ts';
import { decodeLock } from '../lib/lock/lockfile.ts';
import { parseImageRef, registryBase } from '../lib/lock/reference.ts';

const args = process.argv.slice(2);
const n = roundsArg(5);
const mib = Number(args[args.indexOf('--mib') + 1]) || 350;
const f2 = (x: number): string => x.toFixed(2);
const other = args.includes('--other') ? args[args.indexOf('--other') + 1] : undefined;

console.log(startLine('lock'));
const pi = cli();
mkdirSync(join(ROOT, 'bench', '.tmp'), { recursive: true });
const work = mkdtempSync(join(ROOT, 'bench', '.tmp', 'lock-'));
const world = await startWorldProcess(join(work, 'world'), mib);
try {
  const profile = world.profile;
  // A first lock tells what there is to fetch, and leaves a cache holding the base image to seed each round with.
  const seed = join(work, 'seed-cache');
  await measure(pi[0]!, [...pi.slice(1), 'lock', '--no-apt', '--profile', profile, '--cache', seed, '--json']);
  const lock = decodeLock(readFileSync(join(dirname(profile), 'pi-image.lock'), 'utf8'));
  const blobs: { url: string; repo: string; size: number }[] = [];
  for (const img of lock.images) {
    const ref = parseImageRef(img.id);
    for (const b of [img.config, ...img.layers]) if (!blobs.some((u) => u.url.endsWith(b.digest))) blobs.push({ url: `${registryBase(ref.registry)}/v2/${ref.name}/blobs/${b.digest}`, repo: ref.name, size: b.size });
  }
  const files = lock.files.map((f) => ({ url: f.url, size: f.archive?.size ?? f.size })).filter((f, i, all) => all.findIndex((g) => g.url === f.url) === i);
  const bytes = [...blobs, ...files].reduce((s, u) => s + u.size, 0);
  const layerBytes = [...new Map(lock.images.flatMap((m) => m.layers.map((l) => [l.digest, l.size] as const))).values()].reduce((a, b) => a + b, 0);
  console.log(`${blobs.length + files.length} downloads (${blobs.length} blobs, ${files.length} files), ${bytes} bytes (${(bytes / 2 ** 30).toFixed(2)} GiB)`);

  /** The curl script, with tokens fresh for this round (they expire after 10 minutes). */
  const curlScript = async (round: number): Promise<string> => {
    const tokens = new Map<string, string>();
    for (const b of blobs) {
      if (!tokens.has(b.repo)) {
        const t = (await (await fetch(`${world.tokenUrl}?service=pi-image-test-registry&scope=repository:${b.repo}:pull`)).json()) as { token: string };
        tokens.set(b.repo, t.token);
      }
    }
    const all = [...blobs.map((b) => ({ url: b.url, auth: tokens.get(b.repo) })), ...files.map((f) => ({ url: f.url, auth: undefined }))];
    const script = join(work, `curl-${round}.sh`);
    writeFileSync(script, 'set -e\n' + all.map((u, i) => `curl -sSf -L ${u.auth ? `-H 'Authorization: Bearer ${u.auth}' ` : ''}-o "$1/${i}" '${u.url}'`).join('\n') + '\n');
    return script;
  };
  const res = await rounds(n, [
    {
      name: 'curl',
      run: async (r) => {
        const script = await curlScript(r);
        const dir = join(work, `curl-${r}`);
        mkdirSync(dir);
        return measure('sh', [script, dir]);
      },
      after: (r) => {
        rmSync(join(work, `curl-${r}`), { recursive: true, force: true });
        sync();
      },
    },
    ...[['lock --fetch', pi], ...(other ? [['other lock --fetch', [process.execPath, join(other, 'bin', 'pi-image.js')]]] : [])].map(([name, argv]) => ({
      name: name as string,
      before: (r: number) => {
        const cache = join(work, `cache-${r}`);
        mkdirSync(cache);
        cpSync(join(seed, 'images'), join(cache, 'images'), { recursive: true });
        if (existsSync(join(seed, 'sources.json'))) cpSync(join(seed, 'sources.json'), join(cache, 'sources.json'));
      },
      run: async (r: number) => {
        const cmd = argv as string[];
        const cache = join(work, `cache-${r}`);
        const m = await measure(cmd[0]!, [...cmd.slice(1), 'lock', '--no-apt', '--fetch', '--profile', profile, '--cache', cache, '--json']);
        const result = JSON.parse(m.stdout.trim().split('\n').pop()!) as { fetched: number };
        if (result.fetched < layerBytes) throw new Error(`${name} fetched only ${result.fetched} bytes of ${layerBytes} layer bytes`);
        return m;
      },
      after: (r: number) => {
        rmSync(join(work, `cache-${r}`), { recursive: true, force: true });
        sync();
      },
    })),
  ]);
  const curl = res.runs[0]!;
  const ours = res.runs[1]!;
  const speed = ours.map((m, i) => curl[i]!.secs / m.secs);
  console.log('');
  console.log(`lock bench: ${n} alternating rounds, ${(bytes / 2 ** 30).toFixed(2)} GiB in ${blobs.length + files.length} downloads; load now ${machineLine().split('load ')[1]}`);
  console.log(`  curl (sequential)       median ${f2(median(curl.map((m) => m.secs)))} s  (${curl.map((m) => f2(m.secs)).join(', ')}); CPU median ${f2(median(curl.map((m) => m.cpuSecs)))} s`);
  console.log(`  pi-image lock --fetch   median ${f2(median(ours.map((m) => m.secs)))} s  (${ours.map((m) => f2(m.secs)).join(', ')}); CPU median ${f2(median(ours.map((m) => m.cpuSecs)))} s`);
  console.log(`  speed vs curl (curl-time / lock-time per round): median ${f2(median(speed))}x, spread ${f2(Math.min(...speed))}-${f2(Math.max(...speed))}x   (target >= 0.9x)`);
  console.log(`  ${memoryLine(res, 'lock --fetch').text}   (target <= 150 MB)`);
  if (other) {
    const o = res.runs[2]!;
    const os = o.map((m, i) => curl[i]!.secs / m.secs);
    console.log(`  ${other} lock --fetch: median ${f2(median(o.map((m) => m.secs)))} s (${o.map((m) => f2(m.secs)).join(', ')}); CPU median ${f2(median(o.map((m) => m.cpuSecs)))} s; speed vs curl median ${f2(median(os))}x (${f2(Math.min(...os))}-${f2(Math.max(...os))}x)`);
    console.log(`  ${memoryLine(res, 'other lock --fetch').text}`);
  }
} finally {
  await world.close();
  rmSync(work, { recursive: true, force: true });
}
