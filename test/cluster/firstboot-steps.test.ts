// firstboot.sh's clock wait, dpkg-lock wait, order and scrub, run for real with bash on directories standing in
// for /boot/firmware, /var/lib/cloud and /etc/pi-image. systemctl is replaced by a script that records its
// arguments (a test must not start or mask units of the machine it runs on); the NTP flag file and the dpkg lock
// files are temporary files; the lock is a real POSIX lock held by python3's fcntl.lockf.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, parseProfile } from '../../lib/cluster/profile.ts';
import { aptPackagesFor } from '../../lib/cluster/packages.ts';
import { tempDir } from '../helpers/cluster.ts';

const t = tempDir('pi-image-firstboot-steps-');
process.on('exit', t.cleanup);
const script = join(PACKAGE_ROOT, 'cloud-init', 'firstboot.sh');

let n = 0;
/** A fresh node: state dir, cluster.env, recording systemctl, NTP flag path (absent). */
function node(env: string) {
  const dir = join(t.dir, `n${++n}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cluster.env'), env);
  const calls = join(dir, 'systemctl.calls');
  const sysctl = join(dir, 'systemctl');
  writeFileSync(sysctl, `#!/bin/sh\necho "$*" >> ${calls}\n`);
  chmodSync(sysctl, 0o755);
  const vars = {
    PI_IMAGE_ENV: join(dir, 'cluster.env'),
    PI_IMAGE_STATE: join(dir, 'state', 'done'),
    PI_IMAGE_SYSTEMCTL: sysctl,
    PI_IMAGE_TIMESYNC_FLAG: join(dir, 'synchronized'),
    PI_IMAGE_FIRMWARE: join(dir, 'firmware'),
    PI_IMAGE_CLOUD: join(dir, 'cloud'),
    PI_IMAGE_ETC: join(dir, 'etc'),
  };
  const run = (step: string, extra: Record<string, string> = {}) =>
    spawnSync('bash', [script, step], { env: { ...process.env, ...vars, ...extra }, encoding: 'utf8' });
  const systemctl = () => (existsSync(calls) ? readFileSync(calls, 'utf8') : '');
  return { dir, vars, run, systemctl, done: (s: string) => existsSync(join(vars.PI_IMAGE_STATE, s)) };
}

const STEPS = "STEPS='base clock packages runtime kubernetes master'\n";

test('clock: waits for NTP with a console line, then goes on', async () => {
  const nd = node(`${STEPS}CLOCK_WAIT='60'\n`);
  // NTP "synchronises" 6 s in: timesyncd's flag file appears.
  const later = setTimeout(() => writeFileSync(nd.vars.PI_IMAGE_TIMESYNC_FLAG, ''), 6000);
  const r = await new Promise<{ status: number | null; out: string }>((res) => {
    const c = spawn('bash', [script, 'clock'], { env: { ...process.env, ...nd.vars } });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (status) => res({ status, out }));
  });
  clearTimeout(later);
  assert.is(r.status, 0, r.out);
  assert.match(r.out, /^pi-image\[clock\]: waiting up to 60s for NTP to set the clock \(it says \d{4}-.*\); then: packages runtime kubernetes master$/m);
  assert.match(r.out, /clock synchronised by NTP: /);
  assert.ok(nd.done('clock'));
});

test('clock: never synchronised → says so, puts the later steps off and starts the resume unit', () => {
  const nd = node(`${STEPS}CLOCK_WAIT='5'\n`);
  const r = nd.run('clock');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /clock NOT synchronised after 5s \(it says .*\); put off until it is: packages runtime kubernetes master$/m);
  assert.not.ok(nd.done('clock'));
  assert.match(nd.systemctl(), /^start --no-block pi-image-resume\.service$/m);
  // The steps that need a true time do nothing, and say why; a step before the clock is not held back.
  const p = nd.run('packages');
  assert.is(p.status, 0);
  assert.match(p.stdout, /pi-image\[packages\]: put off: needs a true clock/);
  assert.not.ok(nd.done('packages'));
  const m = nd.run('master');
  assert.match(m.stdout, /put off/);
  assert.not.match(nd.run('nonsense').stdout, /put off/);
});

test('packages: waits on the dpkg lock, bounded, naming its holder', async () => {
  const nd = node(`${STEPS}PACKAGES='curl ca-certificates gnupg'\n`);
  mkdirSync(nd.vars.PI_IMAGE_STATE, { recursive: true });
  writeFileSync(join(nd.vars.PI_IMAGE_STATE, 'clock'), '');
  const lock = join(nd.dir, 'lock-frontend');
  writeFileSync(lock, '');
  // A real POSIX (fcntl) lock, as dpkg and apt take it.
  const holder = spawn('python3', ['-c', `import fcntl, time, sys\nf = open(${JSON.stringify(lock)}, 'w')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)`]);
  await new Promise<void>((res) => holder.stdout.once('data', () => res()));
  try {
    const r = await new Promise<{ status: number | null; out: string }>((res) => {
      const c = spawn('bash', [script, 'packages'], { env: { ...process.env, ...nd.vars, PI_IMAGE_DPKG_LOCKS: lock, APT_LOCK_WAIT: '10' } });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('close', (status) => res({ status, out }));
    });
    assert.is(r.status, 1);
    assert.match(r.out, new RegExp(`waiting for the dpkg lock \\(held by pid ${holder.pid} \\S*python3 -c .*; 0s of at most 10s\\)`));
    assert.match(r.out, new RegExp(`FAILED: the dpkg lock is still held after 10s by pid ${holder.pid}`));
    assert.match(r.out, /re-run: sudo \/usr\/local\/lib\/pi-image\/firstboot\.sh packages/);
    assert.not.match(r.out, /apt failed/, 'apt-get never ran while the lock was held');
    // The step installs the list the seed wrote (lib/cluster/packages.ts): with Heketi on, xfsprogs is in it, as
    // the seed renders it for the reference profile (apt is not reached: the lock).
    const list = aptPackagesFor(parseProfile(readFileSync(join(PACKAGE_ROOT, 'profiles', 'yarpi4.yaml'), 'utf8')), 'master').join(' ');
    assert.match(list, /\bglusterfs-server\b.*\bxfsprogs\b/);
    writeFileSync(nd.vars.PI_IMAGE_ENV, `${STEPS}PACKAGES='${list}'\n`);
    const h = spawnSync('bash', [script, 'packages'], { env: { ...process.env, ...nd.vars, PI_IMAGE_DPKG_LOCKS: lock, APT_LOCK_WAIT: '0' }, encoding: 'utf8' });
    assert.match(h.stdout, new RegExp(`installing ${list.replace(/[.+]/g, '\\$&')}`));
  } finally {
    holder.kill();
  }
});

test('base: enables the units a reboot needs before anything else (the boot suite checks it on a node)', () => {
  // base's work touches the machine it runs on (swapoff, fstab, modprobe): here only its order is read.
  const text = readFileSync(script, 'utf8');
  const base = text.slice(text.indexOf('base)\n'), text.indexOf('  log "swap off"'));
  assert.match(base, /daemon-reload[\s\S]*enable --quiet pi-image-resume\.service[\s\S]*enable --quiet kubelet[\s\S]*enabled first, for a reboot/);
  assert.ok(text.indexOf('base)\n') < text.indexOf('clock)\n'), 'base (and its enables) come before every step that can fail');
});

function seedTree(nd: ReturnType<typeof node>) {
  const secret = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretsecretsecret\n-----END RSA PRIVATE KEY-----\n';
  mkdirSync(nd.vars.PI_IMAGE_FIRMWARE, { recursive: true });
  writeFileSync(join(nd.vars.PI_IMAGE_FIRMWARE, 'user-data'), `#cloud-config\n${secret}token: abcdef.0123456789abcdef\n`);
  const inst = join(nd.vars.PI_IMAGE_CLOUD, 'instances', 'pi-image-c-node1-0123');
  mkdirSync(inst, { recursive: true });
  for (const f of ['user-data.txt', 'user-data.txt.i', 'cloud-config.txt', 'obj.pkl']) writeFileSync(join(inst, f), `${f}\n${secret}`);
  writeFileSync(join(inst, 'datasource'), 'DataSourceNoCloud\n');
  mkdirSync(join(nd.vars.PI_IMAGE_ETC, 'secrets'), { recursive: true });
  writeFileSync(join(nd.vars.PI_IMAGE_ETC, 'user-data.scrubbed'), '#cloud-config\n# scrubbed\n');
  writeFileSync(join(nd.vars.PI_IMAGE_ETC, 'kubeadm.yaml'), 'token: abcdef.0123456789abcdef\n');
  writeFileSync(join(nd.vars.PI_IMAGE_ETC, 'secrets', 'heketi-ssh-key'), secret);
  return { inst, secret };
}

test('scrub: seed on the SD and cloud-init copies overwritten; leftovers of done steps removed, others kept', () => {
  const nd = node("STEPS='base clock packages master heketi'\n");
  const { inst } = seedTree(nd);
  mkdirSync(nd.vars.PI_IMAGE_STATE, { recursive: true });
  for (const s of ['base', 'clock', 'packages', 'master']) writeFileSync(join(nd.vars.PI_IMAGE_STATE, s), '');
  const r = nd.run('scrub');
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.is(readFileSync(join(nd.vars.PI_IMAGE_FIRMWARE, 'user-data'), 'utf8'), '#cloud-config\n# scrubbed\n');
  assert.is(readFileSync(join(inst, 'user-data.txt'), 'utf8'), '#cloud-config\n# scrubbed\n');
  for (const f of ['user-data.txt.i', 'cloud-config.txt', 'obj.pkl']) assert.not.ok(existsSync(join(inst, f)), f);
  assert.ok(existsSync(join(inst, 'datasource')), 'cloud-init state without secrets is kept');
  assert.not.ok(existsSync(join(nd.vars.PI_IMAGE_ETC, 'kubeadm.yaml')), 'master is done: kubeadm.yaml (the token) goes');
  assert.ok(existsSync(join(nd.vars.PI_IMAGE_ETC, 'secrets', 'heketi-ssh-key')), 'heketi is not done: its key stays');
  assert.match(r.stdout, /steps not done yet: kept what they need \(heketi \)/);
  assert.not.ok(existsSync(join(nd.dir, 'state', 'complete')));
  assert.not.match(nd.systemctl(), /disable/);

  // heketi done too: FORCE re-run (what resume does) removes its key and completes first boot.
  writeFileSync(join(nd.vars.PI_IMAGE_STATE, 'heketi'), '');
  const again = nd.run('scrub', { FORCE: '1' });
  assert.is(again.status, 0);
  assert.not.ok(existsSync(join(nd.vars.PI_IMAGE_ETC, 'secrets', 'heketi-ssh-key')));
  assert.match(again.stdout, /first boot complete/);
  assert.ok(existsSync(join(nd.dir, 'state', 'complete')));
  const calls = nd.systemctl();
  assert.match(calls, /^unmask --runtime --quiet apt-daily\.service apt-daily-upgrade\.service$/m, 'apt timers released');
  assert.match(calls, /^disable --quiet pi-image-resume\.service$/m);
});

test('resume: runs the steps not done (here: none left but clock), then scrub', () => {
  const nd = node("STEPS='clock'\n");
  seedTree(nd);
  writeFileSync(nd.vars.PI_IMAGE_TIMESYNC_FLAG, '');
  const r = nd.run('resume');
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /pi-image\[clock\]: clock synchronised by NTP/);
  assert.match(r.stdout, /pi-image\[scrub\]: first boot complete/);
  assert.match(nd.systemctl(), /^mask --runtime --quiet apt-daily\.service apt-daily-upgrade\.service$/m, 'apt held while it runs');
});

test('token-cleanup (master timer): waits until every node of the profile has joined, then deletes the token by its id', () => {
  // kubectl and kubeadm stand-ins: the node list is a file the test grows; kubeadm records what it was asked.
  const nd = node("NODE_NAMES='node1 node2 node3'\nTOKEN_ID='abcdef'\n");
  const bin = join(nd.dir, 'bin');
  mkdirSync(bin);
  const nodes = join(nd.dir, 'nodes');
  writeFileSync(nodes, 'node/node1\nnode/node2\n');
  writeFileSync(join(bin, 'kubectl'), `#!/bin/sh\ncat ${nodes}\n`);
  writeFileSync(join(bin, 'kubeadm'), `#!/bin/sh\necho "$*" >> ${join(nd.dir, 'kubeadm.calls')}\n`);
  chmodSync(join(bin, 'kubectl'), 0o755);
  chmodSync(join(bin, 'kubeadm'), 0o755);
  const r1 = nd.run('token-cleanup', { PI_IMAGE_PATH: bin });
  assert.is(r1.status, 0, r1.stderr);
  assert.match(r1.stdout, /waiting for node3 to join/);
  assert.not.ok(existsSync(join(nd.dir, 'kubeadm.calls')));
  assert.not.ok(nd.done('token-cleanup'));
  writeFileSync(nodes, 'node/node1\nnode/node2\nnode/node3\n');
  const r2 = nd.run('token-cleanup', { PI_IMAGE_PATH: bin });
  assert.is(r2.status, 0, r2.stderr);
  assert.match(r2.stdout, /every node has joined: deleting bootstrap token abcdef/);
  assert.is(readFileSync(join(nd.dir, 'kubeadm.calls'), 'utf8'), 'token delete abcdef\n');
  assert.ok(nd.done('token-cleanup'));
  assert.match(nd.systemctl(), /^disable --now pi-image-token-cleanup\.timer$/m, 'the timer is switched off');
});

test.run();
