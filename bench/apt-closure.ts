// Benchmark: `pi-image lock` (the compiled CLI, as a child process) resolving the reference profile's OS packages
// (aptPackagesByRole of profiles/yarpi4.yaml: curl … docker.io, conntrack, socat, …, glusterfs-server, lvm2,
// xfsprogs) against a Packages index of realistic size: Debian bookworm's real main/binary-arm64 Packages.xz
// (~62 000 stanzas, 8.7 MB; 49 MB decompressed), fetched once from this machine's Debian mirror into
// ~/.cache/pi-image-bench (its InRelease checked with gpgv and Debian's keyring, the file with sha256sum).
// The local archive: that Packages.xz under dists/bookworm/, a Release by `apt-ftparchive release`, InRelease
// clearsigned by a gpg key made at bench time, served from 127.0.0.1 (port 0). The base image: an Ubuntu look-alike
// disk (MBR, FAT32 + ext4, made by the real tools) whose root holds a debootstrap-like dpkg status (what
// `apt-get install --simulate` of bookworm's required + important packages installs, each stanza as the archive
// has it plus Status), an apt source naming deb.debian.org bookworm (the profile's mirror replaces it) and the
// bench key. The profile: a copy of yarpi4.yaml pointed at that image and mirror (os.codename bookworm), with the
// reference package list as apt.packages and kubernetes/glusterfs off, so `lock` fetches nothing but the apt chain
// (the rest is bench/lock.ts's business); the bench checks that the list is the reference profile's.
// Each round: a fresh cache holding only the base image (as after a first build), then `lock --json` — InRelease
// fetched and verified with the key read from the image, Packages.xz fetched and checked, decompressed, indexed,
// closed. Baselines in the same rounds, alternating order (bench/lib/measure.ts): apt from an empty private state
// (`apt-get update` of the same archive + `apt-get install --simulate`, the same work as ours) and `apt-get
// install --simulate` alone (lists and binary cache already built). The lock's closure must equal apt's.
// Targets: lock median < 2 s, peak RSS of its process tree <= 150 MB.
// Usage: npx tsx bench/apt-closure.ts [--rounds N] [--cpu-prof DIR]
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { ROOT, cli, loadavg, measure, median, memoryLine, ratioLine, rounds, roundsArg, type Side, startLine } from './lib/measure.ts';
import { ENV, makeKey, serveDir, sign, stopAgent } from '../test/helpers/apt-repo.ts';
import { makeUbuntuLookalike } from '../test/helpers/lookalike.ts';
import { parseDeb822Sources, distUrl } from '../lib/lock/apt/sources.ts';
import { aptPackagesByRole } from '../lib/lock/apt/packages-for.ts';
import { loadProfile } from '../lib/cluster/profile.ts';
import { decodeLock } from '../lib/lock/lockfile.ts';

const n = roundsArg(5);
const ARCH = 'arm64';
const SUITE = 'bookworm';
const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const INDEX = `main/binary-${ARCH}/Packages.xz`;
const run = promisify(execFile);
const sh = (cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string =>
  execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, env: opts.env ?? ENV, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });

// 1. Debian's real index, once: InRelease verified by gpgv with Debian's keyring, Packages.xz by its sha256 there.
const cacheDir = join(homedir(), '.cache', 'pi-image-bench', `debian-${SUITE}-${ARCH}`);
mkdirSync(cacheDir, { recursive: true });
const packagesXz = join(cacheDir, 'Packages.xz');
{
  const sources = ['/etc/apt/sources.list.d/debian.sources'].filter(existsSync).flatMap((f) => parseDeb822Sources(readFileSync(f, 'utf8'), f));
  const src = sources.find((s) => s.suite === SUITE) ?? { uri: 'http://deb.debian.org/debian', suite: SUITE, components: ['main'], origin: 'default' };
  const inRelease = join(cacheDir, 'InRelease');
  const fetchInRelease = () => {
    sh('curl', ['-fsS', '-o', `${inRelease}.tmp`, distUrl(src, 'InRelease')]);
    sh('gpgv', ['--keyring', DEBIAN_KEYRING, `${inRelease}.tmp`]);
    renameSync(`${inRelease}.tmp`, inRelease);
  };
  const listed = (): [string, number] => {
    const m = new RegExp(`^ ([0-9a-f]{64}) +(\\d+) ${INDEX.replace(/[.]/g, '\\.')}$`, 'm').exec(readFileSync(inRelease, 'utf8').split('SHA256:')[1] ?? '');
    if (!m) throw new Error(`${inRelease}: no SHA256 line for ${INDEX}`);
    return [m[1], Number(m[2])];
  };
  const sum = (f: string) => sh('sha256sum', [f]).split(' ')[0];
  if (!existsSync(inRelease)) fetchInRelease();
  if (!existsSync(packagesXz) || sum(packagesXz) !== listed()[0]) {
    fetchInRelease(); // the mirror moved on since the cached one: a fresh pair
    const [sha, size] = listed();
    sh('curl', ['-fsS', '-o', `${packagesXz}.tmp`, distUrl(src, INDEX)]);
    if (sum(`${packagesXz}.tmp`) !== sha) throw new Error(`${distUrl(src, INDEX)}: sha256 differs from its InRelease`);
    renameSync(`${packagesXz}.tmp`, packagesXz);
    console.log(`fetched ${distUrl(src, INDEX)} (${(size / 2 ** 20).toFixed(1)} MiB), checked against its InRelease`);
  }
}
const plain = sh('xz', ['-dc', packagesXz]);
const stanzas = plain.split('\n\n').filter((s) => /^Package:/m.test(s));

// 2. The local archive, signed by a key made now, on 127.0.0.1.
mkdirSync(join(ROOT, 'bench', '.tmp'), { recursive: true });
const work = mkdtempSync(join(ROOT, 'bench', '.tmp', 'apt-closure-'));
const key = makeKey(work, 'bench');
const archive = join(work, 'archive');
const dist = join(archive, 'dists', SUITE);
mkdirSync(join(dist, 'main', `binary-${ARCH}`), { recursive: true });
copyFileSync(packagesXz, join(dist, INDEX));
// The plain file too while Release is written: apt only takes an index whose uncompressed name Release lists.
writeFileSync(join(dist, INDEX.replace(/\.xz$/, '')), plain);
writeFileSync(
  join(dist, 'Release'),
  sh('apt-ftparchive', ['-o', `APT::FTPArchive::Release::Suite=${SUITE}`, '-o', `APT::FTPArchive::Release::Codename=${SUITE}`, '-o', `APT::FTPArchive::Release::Architectures=${ARCH}`, '-o', 'APT::FTPArchive::Release::Components=main', 'release', '.'], { cwd: dist }),
);
rmSync(join(dist, INDEX.replace(/\.xz$/, '')));
sign(dist, key);
const server = await serveDir(archive);

// A private apt state over that archive (no locking, no languages, recommends off, this architecture only).
function aptOptions(d: string, status: string): string[] {
  for (const s of ['state/lists/partial', 'cache/archives/partial', 'parts', 'prefs']) mkdirSync(join(d, s), { recursive: true });
  writeFileSync(join(d, 'sources.list'), `deb ${server.url} ${SUITE} main\n`);
  writeFileSync(join(d, 'trusted.gpg'), key.binary);
  return [
    '-o', `Dir::State=${d}/state`, '-o', `Dir::State::status=${status}`, '-o', `Dir::Cache=${d}/cache`,
    '-o', `Dir::Etc::SourceList=${d}/sources.list`, '-o', `Dir::Etc::SourceParts=${d}/parts`,
    '-o', `Dir::Etc::Trusted=${d}/trusted.gpg`, '-o', `Dir::Etc::TrustedParts=${d}/parts`,
    '-o', `Dir::Etc::Preferences=${d}/prefs/none`, '-o', `Dir::Etc::PreferencesParts=${d}/prefs`,
    '-o', `APT::Architecture=${ARCH}`, '-o', `APT::Architectures::=${ARCH}`, '-o', 'Debug::NoLocking=1',
    '-o', 'APT::Install-Recommends=false', '-o', 'Acquire::Languages=none',
  ];
}
const inst = (out: string): Array<[string, string]> =>
  out.split('\n').map((l) => /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) /.exec(l)).filter((x): x is RegExpExecArray => x !== null).map((x): [string, string] => [x[1], x[2]])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

try {
  // 3. A debootstrap-like base: apt's own closure of the required + important packages on an empty system, each
  // installed stanza as the archive has it (apt compares them with the index), with dpkg's Status.
  const empty = join(work, 'empty-status');
  writeFileSync(empty, '');
  const setup = aptOptions(join(work, 'apt-setup'), empty);
  await run('apt-get', [...setup, '-qq', 'update'], { env: ENV });
  const field = (s: string, f: string) => new RegExp(`^${f}: (.*)$`, 'm').exec(s)?.[1];
  const prio = [...new Set(stanzas.filter((s) => ['required', 'important'].includes(field(s, 'Priority') ?? '')).map((s) => field(s, 'Package')!))].sort();
  const base = new Set(inst((await run('apt-get', [...setup, '-s', 'install', ...prio], { env: ENV, maxBuffer: 64 << 20 })).stdout).map(([p, v]) => `${p} ${v}`));
  const statusText = stanzas
    .filter((s) => base.delete(`${field(s, 'Package')} ${field(s, 'Version')}`))
    .map((s) => s.replace(/^(Package: .*\n)/, '$1Status: install ok installed\n').replace(/^(Filename|Size|MD5sum|SHA256|Description-md5): .*\n?/gm, '').trimEnd())
    .join('\n\n') + '\n';
  if (base.size) throw new Error(`not in the index: ${[...base].join(', ')}`);
  const status = join(work, 'status');
  writeFileSync(status, statusText);
  const installed = statusText.split('\n\n').length;

  // 4. The base image: that status, an apt source the profile's mirror replaces, the bench key in trusted.gpg.d.
  const look = await makeUbuntuLookalike(join(work, 'base'), {
    bootMiB: 33,
    rootMiB: 24,
    bulkBytes: 0,
    extraRootFiles: {
      'var/lib/dpkg/status': statusText,
      'var/lib/dpkg/arch': `${ARCH}\n`,
      'etc/apt/sources.list': `deb http://deb.debian.org/debian ${SUITE} main\n`,
      'etc/apt/trusted.gpg.d/pi-image-bench.gpg': key.binary,
    },
  });

  // 5. The profile: the reference one pointed at this image and mirror, its package list as apt.packages.
  const { profile: ref } = await loadProfile(join(ROOT, 'profiles', 'yarpi4.yaml'));
  const roles = aptPackagesByRole(ref);
  const requested = [...new Set(Object.values(roles).flat())];
  const doc = parseDocument(readFileSync(join(ROOT, 'profiles', 'yarpi4.yaml'), 'utf8'));
  doc.set('image', look.img);
  doc.setIn(['os', 'codename'], SUITE);
  doc.setIn(['apt', 'mirror'], server.url);
  doc.setIn(['apt', 'packages'], requested);
  doc.setIn(['kubernetes', 'enabled'], false);
  doc.setIn(['glusterfs', 'enabled'], false);
  mkdirSync(join(work, 'p'));
  const profilePath = join(work, 'p', 'pi-image.yaml');
  writeFileSync(profilePath, doc.toString());
  const { profile: ours } = await loadProfile(profilePath);
  if (JSON.stringify(aptPackagesByRole(ours)) !== JSON.stringify(roles)) throw new Error(`the bench profile asks for ${JSON.stringify(aptPackagesByRole(ours))}, the reference for ${JSON.stringify(roles)}`);

  // 6. A seed cache holding the base image (a first lock, not timed); apt's state for the "-s only" baseline.
  // --cpu-prof DIR: the lock runs under `node --cpu-prof` (a .cpuprofile per round into DIR, for finding the cost).
  const prof = process.argv.indexOf('--cpu-prof');
  const piImage = cli();
  if (prof >= 0) piImage.splice(1, 0, '--cpu-prof', '--cpu-prof-dir', process.argv[prof + 1]!);
  const lockArgs = (cache: string) => [...piImage, 'lock', '--profile', profilePath, '--cache', cache, '--json'];
  const seed = join(work, 'seed-cache');
  await measure(lockArgs(seed)[0], lockArgs(seed).slice(1));
  const warm = aptOptions(join(work, 'apt-warm'), status);
  await run('apt-get', [...warm, '-qq', 'update'], { env: ENV });
  await run('apt-get', [...warm, '-s', 'install', ...requested], { env: ENV, maxBuffer: 64 << 20 }); // builds pkgcache.bin

  const closures: Record<string, string> = {};
  const cacheOf = (r: number) => join(work, `cache-${r}`);
  const aptCold = (r: number) => join(work, `apt-cold-${r}`);
  const sides: Side[] = [
    {
      name: 'pi-image lock',
      run: async (r) => {
        mkdirSync(cacheOf(r));
        cpSync(join(seed, 'images'), join(cacheOf(r), 'images'), { recursive: true });
        if (existsSync(join(seed, 'sources.json'))) copyFileSync(join(seed, 'sources.json'), join(cacheOf(r), 'sources.json'));
        const m = await measure(lockArgs(cacheOf(r))[0], lockArgs(cacheOf(r)).slice(1));
        const lock = decodeLock(readFileSync(join(work, 'p', 'pi-image.lock'), 'utf8'));
        closures.ours = JSON.stringify(lock.packages.map((p): [string, string] => [p.package, p.version]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
        return m;
      },
      after: (r) => rmSync(cacheOf(r), { recursive: true, force: true }),
    },
    {
      name: 'apt-get update + -s',
      run: async (r) => {
        const o = aptOptions(aptCold(r), status).map((a) => `'${a}'`).join(' ');
        const m = await measure('sh', ['-c', `apt-get ${o} -qq update && apt-get ${o} -s install ${requested.join(' ')}`]);
        closures.aptCold = JSON.stringify(inst(m.stdout));
        return m;
      },
      after: (r) => rmSync(aptCold(r), { recursive: true, force: true }),
    },
    {
      name: 'apt-get -s',
      run: async () => {
        const m = await measure('apt-get', [...warm, '-s', 'install', ...requested]);
        closures.apt = JSON.stringify(inst(m.stdout));
        return m;
      },
    },
  ];
  const loadBefore = loadavg();
  const uptimeBefore = sh('uptime', []).trim();
  console.log(startLine('apt-closure'));
  console.log(`  index: Debian ${SUITE} ${INDEX}, ${stanzas.length} stanzas (${(plain.length / 2 ** 20).toFixed(1)} MiB decompressed); base image: ${installed} packages installed; ${requested.length} requested: ${requested.join(' ')}`);
  const res = await rounds(n, sides);
  const uptimeAfter = sh('uptime', []).trim();
  const lockRuns = res.runs[0];
  const secs = lockRuns.map((m) => m.secs);
  const entries = JSON.parse(closures.ours) as Array<[string, string]>;
  console.log('');
  console.log(`  pi-image lock: median ${median(secs).toFixed(2)} s, spread ${Math.min(...secs).toFixed(2)}-${Math.max(...secs).toFixed(2)} s over ${n} rounds (target < 2 s)`);
  console.log(`  ${ratioLine(res, 'pi-image lock', 'apt-get update + -s').text}`);
  console.log(`  ${ratioLine(res, 'pi-image lock', 'apt-get -s').text}`);
  for (const s of res.names) console.log(`  ${memoryLine(res, s).text}`);
  console.log(`  peak RSS of the lock's process tree: ${memoryLine(res, 'pi-image lock').treeMB.toFixed(0)} MB (target <= 150 MB)`);
  console.log(`  load: ${loadBefore} before, ${loadavg()} after; uptime before: ${uptimeBefore}; after: ${uptimeAfter}`);
  const same = closures.ours === closures.apt && closures.ours === closures.aptCold;
  console.log(`  closure: ${entries.length} .debs; equal to apt-get --simulate's: ${same ? 'yes' : 'NO'}`);
  if (!same) {
    const a = new Set((JSON.parse(closures.apt) as string[][]).map((x) => x.join(' ')));
    const o = new Set(entries.map((x) => x.join(' ')));
    console.log(`  only apt: ${[...a].filter((x) => !o.has(x)).join(', ')}`);
    console.log(`  only pi-image: ${[...o].filter((x) => !a.has(x)).join(', ')}`);
    process.exitCode = 1;
  }
} finally {
  await server.close();
  stopAgent(key);
  rmSync(work, { recursive: true, force: true });
}
