// Benchmark: the apt install closure of the reference profile's packages (aptPackagesByRole of profiles/yarpi4.yaml:
// docker.io, conntrack, socat, …, glusterfs-server, lvm2, xfsprogs) against a Packages index of realistic size:
// Debian bookworm's main/binary-arm64 (~60 000 stanzas), fetched once from this machine's Debian mirror into
// bench/.tmp/apt (with its InRelease) and served from 127.0.0.1 by a static server in its own process. Each round
// runs the resolver's public entry from the compiled tree in a fresh process with an empty cache: InRelease
// checked with Debian's keyring read from a base image (ext4 made with mkfs.ext4 -d, holding a debootstrap-like
// dpkg status: the closure of bookworm's required + important packages), Packages.xz downloaded and checked,
// parsed, closed. Baselines timed in the same rounds, alternating: `xz -dc Packages.xz > /dev/null` (the floor: just
// decoding the index) and `apt-get install --simulate` on the same index and status in a private apt state (its
// lists and binary cache already built; not timed: its `apt-get update`). The closure must equal apt's.
// Prints per-round times, median + spread, and the peak RSS of our process (/usr/bin/time %M).
// Targets: median < 2 s, peak RSS <= 150 MB. Usage: npx tsx bench/apt-closure.ts [--runs N]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDeb822Sources, distUrl } from '../lib/lock/apt/sources.ts';
import { fetchRelease, fetchVerified, readPackagesFile } from '../lib/lock/apt/archive.ts';
import { readKeyring } from '../lib/lock/apt/keyring.ts';
import { Universe } from '../lib/lock/apt/universe.ts';
import { installClosure } from '../lib/lock/apt/closure.ts';
import { StanzaParser, writeStanzas } from '../lib/lock/apt/deb822.ts';
import { aptPackagesByRole } from '../lib/lock/apt/packages-for.ts';
import { loadProfile } from '../lib/cluster/profile.ts';
import { openDecoded, detectFormat } from '../lib/source/decompress.ts';
import { newestTs } from './lib/newest-ts.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 5;
const ARCH = 'arm64';
const SUITE = 'bookworm';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const now = (): number => Number(process.hrtime.bigint()) / 1e9;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number): string => n.toFixed(2);

/** Wall seconds, CPU seconds (user + system, the process and its children) and peak RSS (MB) of a command. */
function timed(cmd: string, argv: string[]): { secs: number; cpu: number; rssMB: number; stdout: string } {
  const t0 = now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...argv], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const secs = now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  const [kb, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { secs, cpu: user + sys, rssMB: kb / 1024, stdout: r.stdout };
}

const tmp = join(ROOT, 'bench', '.tmp', 'apt');
mkdirSync(tmp, { recursive: true });

// 1. The compiled tree (as `npm run build` makes it), rebuilt when a source is newer.
const dist = join(ROOT, 'bench', '.tmp', 'apt-dist');
if (!existsSync(join(dist, '.built')) || Math.max(newestTs(join(ROOT, 'lib')), newestTs(join(ROOT, 'bin'))) > statSync(join(dist, '.built')).mtimeMs) {
  rmSync(dist, { recursive: true, force: true });
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', dist], { stdio: 'inherit' });
  writeFileSync(join(dist, '.built'), '');
}

// 2. Debian's real index, once: InRelease verified with Debian's keyring, Packages.xz checked against it.
const mirrorDir = join(tmp, 'mirror');
const localIndex = join(mirrorDir, 'dists', SUITE, 'main', `binary-${ARCH}`, 'Packages.xz');
if (!existsSync(localIndex)) {
  const hostSources = ['/etc/apt/sources.list.d/debian.sources'].filter(existsSync).flatMap((f) => parseDeb822Sources(readFileSync(f, 'utf8'), f));
  const src = hostSources.find((s) => s.suite === SUITE) ?? { uri: 'http://deb.debian.org/debian', suite: SUITE, components: ['main'], origin: 'default' };
  const keys = await readKeyring([{ name: KEYRING, data: readFileSync(KEYRING) }]);
  const release = await fetchRelease(src, keys, { cacheDir: join(tmp, 'fetch-cache') });
  const f = release.files.get(`main/binary-${ARCH}/Packages.xz`)!;
  const path = await fetchVerified(distUrl(src, `main/binary-${ARCH}/Packages.xz`), f.sha256, f.size, { cacheDir: join(tmp, 'fetch-cache') });
  mkdirSync(dirname(localIndex), { recursive: true });
  copyFileSync(path, localIndex);
  writeFileSync(join(mirrorDir, 'dists', SUITE, 'InRelease'), execFileSync('curl', ['-fsS', distUrl(src, 'InRelease')]));
  console.log(`fetched ${distUrl(src, 'InRelease')} and Packages.xz (${(f.size / 2 ** 20).toFixed(1)} MiB)`);
}
let stanzas = 0;
{
  const d = await openDecoded(localIndex, detectFormat(localIndex));
  const p = new StanzaParser(() => stanzas++, { fields: ['package'] });
  for await (const c of d.stream) p.push(c as Buffer);
  p.end();
}

// 3. A debootstrap-like base: the closure of bookworm's required + important packages, as installed.
const status = join(tmp, 'status');
if (!existsSync(status)) {
  const universe = new Universe(ARCH);
  await readPackagesFile(localIndex, { uri: 'x', suite: SUITE }, universe);
  const prio: string[] = [];
  const d = await openDecoded(localIndex, detectFormat(localIndex));
  const p = new StanzaParser((st) => {
    if (['required', 'important'].includes(st.get('priority') ?? '') && (st.get('architecture') === ARCH || st.get('architecture') === 'all')) prio.push(st.get('package')!);
  }, { fields: ['package', 'priority', 'architecture'] });
  for await (const c of d.stream) p.push(c as Buffer);
  p.end();
  const base = installClosure(universe, [], [...new Set(prio)].sort());
  // Each installed package's stanza as the archive has it (every field), plus its Status, as dpkg keeps it: apt
  // hashes Installed-Size and the relationship fields, and takes a stanza that differs for another version.
  const want = new Set(base.map((b) => `${b.package} ${b.version} ${b.architecture}`));
  const out: Array<Array<[string, string]>> = [];
  const d2 = await openDecoded(localIndex, detectFormat(localIndex));
  const p2 = new StanzaParser((st) => {
    if (!want.has(`${st.get('package')} ${st.get('version')} ${st.get('architecture')}`)) return;
    want.delete(`${st.get('package')} ${st.get('version')} ${st.get('architecture')}`);
    const fields = [...st].map(([k, v]): [string, string] => [k.replace(/(^|-)[a-z]/g, (c) => c.toUpperCase()), v]);
    out.push([fields[0], ['Status', 'install ok installed'], ...fields.slice(1).filter(([k]) => !['Filename', 'Size', 'Md5sum', 'Sha256'].includes(k))]);
  });
  for await (const c of d2.stream) p2.push(c as Buffer);
  p2.end();
  writeFileSync(status, writeStanzas(out));
}
const installedCount = readFileSync(status, 'utf8').split('\n\n').length;

// 4. The static mirror, in its own process.
const server = spawn(process.execPath, ['-e', `
  const http = require('http'), fs = require('fs'), path = require('path');
  const root = ${JSON.stringify(mirrorDir)};
  const s = http.createServer((q, r) => {
    const f = path.join(root, decodeURIComponent(new URL(q.url, 'http://x').pathname));
    if (!f.startsWith(root) || !fs.existsSync(f) || !fs.statSync(f).isFile()) { r.writeHead(404).end(); return; }
    r.writeHead(200, { 'Content-Length': fs.statSync(f).size });
    fs.createReadStream(f).pipe(r);
  });
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) => server.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
const mirror = `http://127.0.0.1:${port}/`;

// 5. The base image: status, sources (the stock URI the mirror replaces), Debian's keyring by signed-by.
const imgDir = join(tmp, 'image');
const image = join(tmp, 'root.ext4');
rmSync(imgDir, { recursive: true, force: true });
for (const [p, data] of Object.entries({
  'var/lib/dpkg/status': readFileSync(status),
  'etc/apt/sources.list': `deb [signed-by=${KEYRING}] http://deb.debian.org/debian ${SUITE} main\n`,
  [KEYRING.slice(1)]: readFileSync(KEYRING),
})) {
  mkdirSync(dirname(join(imgDir, p)), { recursive: true });
  writeFileSync(join(imgDir, p), data);
}
rmSync(image, { force: true });
execFileSync('truncate', ['-s', '64M', image]);
execFileSync('mkfs.ext4', ['-q', '-F', '-d', imgDir, image], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });

const { profile } = await loadProfile(join(ROOT, 'profiles', 'yarpi4.yaml'));
const roles = aptPackagesByRole(profile);
const requested = [...new Set(Object.values(roles).flat())];

// 6. apt's private state for the baseline (update once, not timed).
const aptDir = join(tmp, 'apt-state');
rmSync(aptDir, { recursive: true, force: true });
for (const s of ['state/lists/partial', 'cache/archives/partial', 'parts', 'prefs']) mkdirSync(join(aptDir, s), { recursive: true });
writeFileSync(join(aptDir, 'sources.list'), `deb ${mirror} ${SUITE} main\n`);
const aptOpts = [
  '-o', `Dir::State=${aptDir}/state`, '-o', `Dir::State::status=${status}`, '-o', `Dir::Cache=${aptDir}/cache`,
  '-o', `Dir::Etc::SourceList=${aptDir}/sources.list`, '-o', `Dir::Etc::SourceParts=${aptDir}/parts`,
  '-o', `Dir::Etc::Trusted=${KEYRING}`, '-o', `Dir::Etc::TrustedParts=${aptDir}/parts`,
  '-o', `Dir::Etc::Preferences=${aptDir}/prefs/none`, '-o', `Dir::Etc::PreferencesParts=${aptDir}/prefs`,
  '-o', `APT::Architecture=${ARCH}`, '-o', `APT::Architectures::=${ARCH}`, '-o', 'Debug::NoLocking=1',
  '-o', 'APT::Install-Recommends=false', '-o', 'Acquire::Languages=none', '-o', 'Acquire::Check-Valid-Until=false',
];
execFileSync('apt-get', [...aptOpts, '-qq', 'update']);
const aptSim = (): Array<[string, string]> =>
  execFileSync('apt-get', [...aptOpts, '-s', 'install', ...requested], { encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\n').map((l) => /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) /.exec(l)).filter((m): m is RegExpExecArray => m !== null).map((m): [string, string] => [m[1], m[2]])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
execFileSync('apt-get', [...aptOpts, '-s', 'install', ...requested], { stdio: 'ignore' }); // builds its binary cache

const xzT: number[] = [];
const aptT: number[] = [];
const ours: number[] = [];
const cpu = { xz: [] as number[], apt: [] as number[], ours: [] as number[] };
let rss = 0;
let last: { count: number; bytes: number; entries: Array<[string, string]> } | undefined;
try {
  for (let i = 0; i < runs; i++) {
    const x = timed('sh', ['-c', `xz -dc "${localIndex}" > /dev/null`]);
    xzT.push(x.secs);
    cpu.xz.push(x.cpu);
    const a = timed('apt-get', [...aptOpts, '-s', 'install', ...requested]);
    aptT.push(a.secs);
    cpu.apt.push(a.cpu);
    const cache = join(tmp, `cache-${i}`);
    rmSync(cache, { recursive: true, force: true });
    const r = timed(process.execPath, [join(ROOT, 'bench', 'apt-closure-entry.mjs'), dist, image, mirror, SUITE, cache, JSON.stringify(roles)]);
    rmSync(cache, { recursive: true, force: true });
    ours.push(r.secs);
    cpu.ours.push(r.cpu);
    rss = Math.max(rss, r.rssMB);
    last = JSON.parse(r.stdout.trim().split('\n').pop()!);
    console.log(`round ${i + 1}: xz -dc ${fmt(xzT[i])} s (cpu ${fmt(x.cpu)}), apt-get -s ${fmt(aptT[i])} s (cpu ${fmt(a.cpu)}), pi-image ${fmt(r.secs)} s (cpu ${fmt(r.cpu)}), ${r.rssMB.toFixed(0)} MB`);
  }
} finally {
  server.kill();
}
const apt = aptSim();
const same = JSON.stringify(apt) === JSON.stringify(last!.entries);
console.log('');
console.log(`apt-closure bench: ${runs} round(s); index ${stanzas} stanzas (bookworm main ${ARCH}), ${installedCount} packages installed in the base, ${requested.length} requested: ${requested.join(' ')}`);
console.log(`  ${execFileSync('nproc').toString().trim()} cores, load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
console.log(`  xz -dc Packages.xz > /dev/null   median ${fmt(median(xzT))} s  (${xzT.map(fmt).join(', ')}); cpu median ${fmt(median(cpu.xz))} s`);
console.log(`  apt-get install --simulate      median ${fmt(median(aptT))} s  (${aptT.map(fmt).join(', ')}); cpu median ${fmt(median(cpu.apt))} s  (binary cache prebuilt)`);
console.log(`  pi-image resolve (no .debs)     median ${fmt(median(ours))} s  spread ${fmt(Math.min(...ours))}-${fmt(Math.max(...ours))} s; cpu median ${fmt(median(cpu.ours))} s  (target < 2 s)`);
console.log(`  ratio pi-image / xz -dc         median ${fmt(median(ours.map((o, i) => o / xzT[i])))}x wall, ${fmt(median(cpu.ours.map((o, i) => o / cpu.xz[i])))}x cpu`);
console.log(`  peak RSS of the resolve         ${rss.toFixed(0)} MB  (target <= 150 MB)`);
console.log(`  closure: ${last!.count} .debs, ${(last!.bytes / 2 ** 20).toFixed(1)} MiB; equal to apt-get --simulate: ${same ? 'yes' : 'NO'}`);
if (!same) {
  const a = new Set(apt.map((x) => x.join(' ')));
  const o = new Set(last!.entries.map((x) => x.join(' ')));
  console.log(`  only apt: ${[...a].filter((x) => !o.has(x)).join(', ')}`);
  console.log(`  only pi-image: ${[...o].filter((x) => !a.has(x)).join(', ')}`);
  process.exitCode = 1;
}
