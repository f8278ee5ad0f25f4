// A first boot that real hardware would give, proven under QEMU: node1 of profile-k8s.yaml (Kubernetes, GlusterFS
// and Heketi on: its seed holds the CA key, the bootstrap token and Heketi's keys) boots with its clock years
// behind and no NTP server, on writable copies of its SD and SSD images. The console must show the bounded wait
// for NTP and the steps that need a true time put off, none of them run before it. Afterwards the WHOLE SD image is
// scanned byte by byte, and the SSD's /var/lib/cloud (read with debugfs), for the exact bytes of those secrets:
// none may be left. Then the same SD and SSD boot again: first boot does not run again, kubelet is enabled, and
// what the seed wrote is not written again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepare } from './prepare.ts';
import { boot, loadFromBootPartition, type BootResult } from './qemu.ts';
import { diagnose, formatTimeline, markers, seedProblems, timeline } from './console.ts';
import { run, toolEnv } from './sh.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const env = await prepare();
if (env.skip) console.log(`SKIP first-boot suite (secrets and clock): ${env.skip}`);
const it = env.skip ? test.skip : test;

const work = mkdtempSync(join(tmpdir(), 'pi-image-boot-secrets-'));
/** The guest's RTC: years behind any real date a Pi could be flashed on. */
const RTC = '2019-06-01T00:00:00';

interface Node { sd: string; ssd: string; secrets: string; partUuid: string }
let built: Node | undefined;

function buildNode(): Node {
  if (built) return built;
  const out = join(work, 'out');
  const secrets = join(work, 'secrets');
  const r = spawnSync(
    process.execPath,
    [join(root, 'bin/pi-image.js'), 'build', 'node1', '--profile', join(here, 'profile-k8s.yaml'), '--image', env.base!.path, '--out', out, '--cache', join(work, 'cache'), '--secrets', secrets, '--json'],
    { env: { ...toolEnv, SOURCE_DATE_EPOCH: '1577836800' }, encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  assert.is(r.status, 0, `pi-image build failed: ${r.stderr}`);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const node = events.find((e) => e.event === 'node') as { rootPartUuid: string } | undefined;
  assert.ok(node);
  const notice = events.find((e) => e.event === 'notice') as { message: string } | undefined;
  assert.match(notice?.message ?? '', /^sd\.img of node1 hold cluster secrets .*written 0600/);
  const sd = join(out, 'node1', 'sd.img');
  assert.is(statSync(sd).mode & 0o777, 0o600, 'the SD image holds the CA key: 0600');
  built = { sd, ssd: join(out, 'node1', 'ssd.img'), secrets, partUuid: node!.rootPartUuid };
  return built;
}

/** The exact bytes to look for: every base64 line of the two private keys, the token, Heketi's admin key. */
function needles(secretsDir: string): { name: string; bytes: Buffer }[] {
  const read = (f: string) => readFileSync(join(secretsDir, f), 'utf8');
  const pemLines = (f: string) =>
    read(f).split('\n').filter((l) => l && !l.startsWith('-----')).map((l, i) => ({ name: `${f} line ${i + 1}`, bytes: Buffer.from(l) }));
  return [
    ...pemLines('ca.key'),
    ...pemLines('heketi-ssh-key'),
    { name: 'bootstrap token', bytes: Buffer.from(read('bootstrap-token').trim()) },
    { name: 'Heketi admin key', bytes: Buffer.from(read('heketi-admin-key').trim()) },
  ];
}

/** Byte offsets of each needle in a file, read in chunks (constant memory) that overlap by the longest needle. */
function scanFile(path: string, list: { name: string; bytes: Buffer }[]): Map<string, number[]> {
  const found = new Map<string, number[]>();
  const overlap = Math.max(...list.map((n) => n.bytes.length)) - 1;
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc((8 << 20) + overlap);
  try {
    let pos = 0;
    let carry = 0;
    for (;;) {
      const n = readSync(fd, buf, carry, buf.length - carry, pos);
      const len = carry + n;
      if (len === 0) break;
      const view = buf.subarray(0, len);
      for (const nd of list) {
        for (let i = view.indexOf(nd.bytes); i >= 0; i = view.indexOf(nd.bytes, i + 1)) {
          // A hit wholly inside the carried-over head was already counted in the previous chunk.
          if (carry > 0 && i + nd.bytes.length <= carry) continue;
          const at = pos - carry + i;
          found.set(nd.name, [...(found.get(nd.name) ?? []), at]);
        }
      }
      if (n === 0) break;
      pos += n;
      carry = Math.min(overlap, len);
      view.copy(buf, 0, len - carry, len);
    }
  } finally {
    closeSync(fd);
  }
  return found;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

const describe = (m: Map<string, number[]>) => [...m].map(([k, v]) => `${k} at ${v.slice(0, 3).join(', ')}`).join('; ');

// Boots run once, shared by the tests below in order.
let first: { r: BootResult; sd: string; ssd: string } | undefined;
let second: BootResult | undefined;

async function firstBoot() {
  if (first) return first;
  const b = buildNode();
  const sd = join(work, 'sd-rw.img');
  const ssd = join(work, 'ssd-rw.img');
  run('cp', ['--sparse=always', b.sd, sd]);
  run('cp', ['--sparse=always', b.ssd, ssd]);
  run('truncate', ['-s', '5G', ssd]);
  const lines: { seconds: number; line: string }[] = [];
  const t0 = Date.now();
  const logFile = join(env.logDir, 'node1-k8s.log');
  const r = await boot({
    disks: [sd, ssd], load: loadFromBootPartition(sd), nic: true, writable: true, rtcBase: RTC, timeoutSeconds: 900, logFile,
    onLine: (line) => lines.push({ seconds: (Date.now() - t0) / 1000, line }),
  });
  const t = formatTimeline(timeline(lines));
  writeFileSync(join(env.logDir, 'node1-k8s.timeline.txt'), `${t}\n`);
  console.log(`node1 (Kubernetes, clock behind) first boot to power-off in ${r.seconds.toFixed(1)} s\n${t}`);
  first = { r, sd, ssd };
  return first;
}

it('clock years behind, no NTP: the bounded wait is on the console, and nothing that needs a true time ran before it', async () => {
  const { r } = await firstBoot();
  const why = diagnose(r);
  assert.not.ok(why, `${why} (console log: ${join(env.logDir, 'node1-k8s.log')})`);
  assert.equal(seedProblems(r.log), []);
  const log = r.log;
  const m = markers(log);
  // The RTC starts in 2019; systemd moves a clock that is before its own build date up to it (as eoan's does), so
  // the guest runs months or years behind: never at the true time.
  const guest = Date.parse(m.get('date')?.[0] ?? '');
  assert.ok(guest < Date.now() - 30 * 86400e3, `the guest's clock is behind (it said ${m.get('date')?.[0]})`);
  const wait = log.search(/pi-image\[clock\]: waiting up to 20s for NTP to set the clock \(it says \d{4}-/);
  const gaveUp = log.search(/pi-image\[clock\]: clock NOT synchronised after 20s \(it says .*\); put off until it is: packages runtime (images )?kubernetes gluster master addons heketi/);
  assert.ok(wait >= 0, 'the wait is announced');
  assert.ok(gaveUp > wait, 'the timeout is said plainly');
  // Before the wait: only base and brick ran. After it: each later step says it is put off, and none did its work.
  const before = log.slice(0, wait);
  assert.match(before, /pi-image\[base\]: enabled first, for a reboot: pi-image-resume kubelet/);
  assert.not.match(before, /pi-image\[(packages|runtime|kubernetes|gluster|master|addons|heketi)\]/);
  for (const s of ['packages', 'runtime', 'kubernetes', 'gluster', 'master', 'addons', 'heketi']) {
    assert.match(log.slice(gaveUp), new RegExp(`pi-image\\[${s}\\]: put off: needs a true clock`), s);
  }
  assert.not.match(log, /pi-image\[\w+\]: (installing|download|kubeadm init|Kubernetes v?\d|glusterd|loading the GlusterFS)/);
  assert.match(log, /pi-image: holding apt-daily\.timer, apt-daily-upgrade\.timer/, 'bootcmd held apt\'s timers');
  const one = (k: string) => m.get(k)?.join('\n');
  assert.is(one('apt-held'), 'masked-runtime', 'apt-daily.service is masked while first boot is not complete');
  assert.match(one('steps') ?? '', /^base (brick bundle|bundle brick|brick) scrub$/, 'done: brick, base, scrub; the clock and what needs it are not');
  assert.is(one('resume'), 'enabled', 'pi-image-resume.service finishes the steps once NTP syncs (also after a reboot)');
  assert.is(one('kubelet'), 'enabled', 'kubelet enabled in base, before any step that can fail');
  assert.is(one('ca-key-mode'), '600');
  assert.match(log, /pi-image\[scrub\]: steps not done yet: kept what they need \(clock packages runtime (images )?kubernetes gluster master addons heketi \)/);
  assert.match(one('cloud-init') ?? '', /"errors":\[\]/);
});

it('after first boot no byte of the CA key, the Heketi key or the token is left on the SD, nor in /var/lib/cloud', async () => {
  const { sd, ssd } = await firstBoot();
  const b = buildNode();
  const list = needles(b.secrets);
  assert.ok(list.length > 40, `${list.length} needles`);
  // The scan finds them where they are: the SD as built holds every one (the seed), so a miss below means gone.
  const t0 = Date.now();
  const inBuilt = scanFile(b.sd, list);
  assert.equal(list.filter((n) => !inBuilt.has(n.name)).map((n) => n.name), [], 'the built SD holds every needle');
  const left = scanFile(sd, list);
  assert.is(left.size, 0, `left on the SD after first boot: ${describe(left)}`);
  const sdSeconds = (Date.now() - t0) / 1000;
  // Before the scrub, cloud-init's copies did hold the keys (counted by the guest before scrub ran).
  const m = markers((await firstBoot()).r.log);
  const counts = Object.fromEntries((m.get('before-scrub') ?? []).map((l) => l.split(' ') as [string, string]));
  for (const f of ['/boot/firmware/user-data', '/var/lib/cloud/instance/user-data.txt', '/var/lib/cloud/instance/cloud-config.txt', '/var/lib/cloud/instance/obj.pkl']) {
    assert.ok(Number(counts[f]) >= 2, `${f} held private keys before scrub (${counts[f]})`);
  }
  // The SSD: /var/lib/cloud as ext4 holds it (debugfs), plus cloud-init's logs.
  // p1 starts where the base image's root does (the build keeps that offset): read it from the table.
  const p1 = JSON.parse(run('sfdisk', ['--json', ssd])).partitiontable.partitions[0].start as number;
  const spec = `${ssd}?offset=${p1 * 512}`;
  const dump = join(work, 'ssd-dump');
  mkdirSync(dump, { recursive: true });
  run('debugfs', ['-R', `rdump /var/lib/cloud ${dump}`, spec]);
  for (const f of ['cloud-init.log', 'cloud-init-output.log']) run('debugfs', ['-R', `dump /var/log/${f} ${join(dump, f)}`, spec]);
  const files = filesUnder(dump);
  assert.ok(files.some((f) => f.endsWith('/user-data.txt')), 'cloud-init\'s instance directory was read');
  const hits: string[] = [];
  for (const f of files) {
    const found = scanFile(f, list);
    if (found.size) hits.push(`${f.slice(dump.length)}: ${describe(found)}`);
  }
  assert.equal(hits, [], 'no secret in /var/lib/cloud or the cloud-init logs');
  // The node keeps what the steps still to run need, 0600 (the token is in kubeadm.yaml until `master` is done).
  const kubeadm = run('debugfs', ['-R', 'cat /etc/pi-image/kubeadm.yaml', spec]);
  assert.ok(kubeadm.includes(readFileSync(join(b.secrets, 'bootstrap-token'), 'utf8').trim()), 'control: the scan would see the token');
  for (const f of ['/etc/pi-image/kubeadm.yaml', '/etc/kubernetes/pki/ca.key', '/etc/pi-image/secrets/heketi-ssh-key']) {
    assert.match(run('debugfs', ['-R', `stat ${f}`, spec]), /Mode:\s+0600/, f);
  }
  console.log(`scanned the whole SD (${(statSync(sd).size / 2 ** 20).toFixed(0)} MiB, built and booted) in ${sdSeconds.toFixed(1)} s and ${files.length} files of /var/lib/cloud and /var/log for ${list.length} needles: none left`);
});

it('a second boot of the same SD and SSD: first boot does not run again, kubelet enabled, nothing re-applied', async () => {
  const { r: r1, sd, ssd } = await firstBoot();
  assert.ok(r1.poweredOff);
  const logFile = join(env.logDir, 'node1-k8s-second.log');
  second = await boot({ disks: [sd, ssd], load: loadFromBootPartition(sd), nic: true, writable: true, rtcBase: RTC, timeoutSeconds: 600, logFile });
  const r = second;
  const why = diagnose(r);
  assert.not.ok(why, `${why} (console log: ${logFile})`);
  const m = markers(r.log);
  const one = (k: string) => m.get(k)?.join('\n');
  assert.is(one('second-boot'), 'yes', 'the second boot reported (the unit the first boot armed)');
  assert.is(one('kubelet'), 'enabled');
  assert.is(one('marker'), 'changed after first boot', 'write_files did not write its file again');
  assert.is(one('done-stamp'), markers(r1.log).get('done-stamp')?.[0], 'the base step did not run again');
  assert.match(one('steps') ?? '', /^base (brick bundle|bundle brick|brick) scrub$/);
  assert.is(one('seed-sd'), 'scrubbed');
  assert.not.match(r.log, /PIIMG-MARK runcmd extra-ran/, 'runcmd did not run again');
  assert.not.match(r.log, /pi-image\[(brick|base|clock|scrub)\]/, 'no first-boot step ran again');
  // Still no true clock: the resume unit waits for NTP (it would run the steps put off, then scrub).
  assert.match(r.log, /pi-image\[resume\]: waiting for NTP to set the clock before: packages/);
  console.log(`second boot to power-off in ${r.seconds.toFixed(1)} s`);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
