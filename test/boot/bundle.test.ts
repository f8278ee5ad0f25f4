// First boot from the bundle, for real, with no network: `pi-image lock --fetch` against a registry (docker-registry +
// skopeo) and a file server on 127.0.0.1, and against Debian's archive (the mirror the stand-in's own apt sources
// name, its InRelease checked with the keyring read from the stand-in), for the platform read from the Debian
// stand-in (amd64: the lock must pick the amd64 variant of a two-platform image), then `pi-image build --offline`;
// QEMU boots the node with its guest network restricted (no route to any server). On the console: the bundle step
// moves SSD p2 past the root's final size, grows the root, extracts and sha256-checks the bundle, places the
// profile's file (its sha256 checked again on the node), frees p2; the packages step installs containerd, runc and
// tree from the bundle's .debs (none of them is in the stand-in); the images step imports the image archive with
// `ctr -n k8s.io images import`, and runcmd runs the image once (a static busybox) to print a marker.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepare } from './prepare.ts';
import { boot, loadFromBootPartition } from './qemu.ts';
import { diagnose, markers } from './console.ts';
import { toolEnv } from './sh.ts';
import { cacheDir } from './rootfs.ts';
import { startRegistry, makeOciLayout, pushImage } from '../helpers/registry.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const env = await prepare();
if (env.skip) console.log(`SKIP first-boot suite (bundle boot): ${env.skip}`);
const it = env.skip ? test.skip : test;
const work = mkdtempSync(join(tmpdir(), 'pi-image-boot-bundle-'));
// The lock's cache outlives the run (content-addressed, every entry verified): the stand-in's copy and the .debs
// from Debian's archive are fetched once per machine, not per run.
const lockCache = join(cacheDir(), 'lock-cache');
const BUSYBOX = '/bin/busybox';

/** A static ELF (no PT_INTERP program header): it runs in a container that holds nothing else. */
function isStaticElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(64);
    readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2) return false;
    const phoff = Number(h.readBigUInt64LE(0x20));
    const size = h.readUInt16LE(0x36);
    const count = h.readUInt16LE(0x38);
    const ph = Buffer.alloc(size * count);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < count; i++) if (ph.readUInt32LE(i * size) === 3) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(root, 'bin/pi-image.js'), ...args], { env: { ...toolEnv, SOURCE_DATE_EPOCH: '1577836800' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let o = '';
    let e = '';
    p.stdout.on('data', (d) => (o += d));
    p.stderr.on('data', (d) => (e += d));
    p.on('close', (c) => (c === 0 ? resolve(o) : reject(new Error(`pi-image ${args[0]} exited ${c}: ${e}`))));
  });
}

it('first boot places a bundled file, installs containerd + runc + tree from the bundle and runs the bundled image, offline', async () => {
  assert.ok(isStaticElf(BUSYBOX), `${BUSYBOX} must be a static busybox (bash test/run.sh installs busybox-static)`);
  const registry = await startRegistry(join(work, 'registry'));
  const img = makeOciLayout(join(work, 'oci'), '1.0', ['arm64', 'amd64'], { run: { arch: 'amd64', busybox: BUSYBOX, cmd: ['/bin/busybox', 'echo', 'PIIMG-MARK container hello from the bundled image'] } });
  await pushImage(img, registry, 'tools/hello');
  const payload = Buffer.from('a file pinned by pi-image.lock and carried on the SSD\n'.repeat(100));
  const payloadSha = createHash('sha256').update(payload).digest('hex');
  const files = createServer((req, res) => {
    if (req.url === '/payload.bin') res.end(payload);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(files.address() as { port: number }).port}`;
  const pdir = join(work, 'p');
  mkdirSync(pdir);
  const profile = join(pdir, 'pi-image.yaml');
  writeFileSync(
    profile,
    `apiVersion: pi-image/v1
cluster: { name: bundletest, domain: boot.test }
nodes:
  - { name: node1, role: master, address: 10.0.2.50/24, gateway: 10.0.2.2 }
ssd: { brick: false, rootSize: 4GiB }
os: { version: '12.0', codename: bookworm }
apt: { packages: [containerd, runc, tree] }
kubernetes: { enabled: false }
glusterfs: { enabled: false }
ntp: { enabled: false }
bundle:
  files: [{ url: ${base}/payload.bin, path: /opt/bundled/payload.bin, permissions: '0640' }]
  images: [${registry.host}/tools/hello:1.0]
runcmd:
  - "echo PIIMG-MARK placed $(sha256sum /opt/bundled/payload.bin) > /dev/console"
  - "echo PIIMG-MARK mode $(stat -c %a /opt/bundled/payload.bin) > /dev/console"
  - "echo PIIMG-MARK parts $(sfdisk -d /dev/vdb | grep -c start=) > /dev/console"
  - "echo PIIMG-MARK root-sectors $(cat /sys/class/block/vdb1/size) > /dev/console"
  - "echo PIIMG-MARK root-fs-mib $(df -B1M --output=size / | tail -n1) > /dev/console"
  - "echo PIIMG-MARK tree $(tree --version 2>&1 | head -n1) > /dev/console"
  - "echo PIIMG-MARK runc $(runc --version 2>&1 | head -n1) > /dev/console"
  - "echo PIIMG-MARK imported $(ctr -n k8s.io images ls -q | grep -c tools/hello:1.0) > /dev/console"
  - "ctr -n k8s.io run --rm ${registry.host}/tools/hello:1.0 piimg-hello > /dev/console 2>&1 || echo PIIMG-MARK container failed $? > /dev/console"
  - "echo PIIMG-MARK steps $(ls /var/lib/pi-image/done | tr '\\\\n' ' ') > /dev/console"
  - "grep -E 'pi-image\\\\[(bundle|packages|images)\\\\]' /var/log/cloud-init-output.log | sed 's/^/PIIMG-MARK log /' > /dev/console"
  - "echo PIIMG-MARK poweroff now > /dev/console; poweroff"
`,
  );
  let lockOut: string;
  try {
    lockOut = await cli(['lock', '--fetch', '--profile', profile, '--image', env.base!.path, '--cache', lockCache, '--json']);
  } finally {
    files.close();
    await registry.stop();
  }
  const lockResult = JSON.parse(lockOut.trim().split('\n').pop()!);
  assert.is(lockResult.platform, 'linux/amd64', 'the platform is read from the stand-in, not assumed');
  const lock = readFileSync(join(pdir, 'pi-image.lock'), 'utf8');
  assert.match(lock, new RegExp(`digest: ${img.manifests.amd64}`), 'the amd64 manifest was picked from the index');
  const out = join(work, 'out');
  await cli(['build', 'node1', '--offline', '--profile', profile, '--image', env.base!.path, '--out', out, '--cache', lockCache, '--secrets', join(work, 'secrets'), '--json']);
  const sd = join(out, 'node1', 'sd.img');
  const ssd = join(work, 'ssd-5g.img');
  spawnSync('cp', ['--sparse=always', join(out, 'node1', 'ssd.img'), ssd]);
  spawnSync('truncate', ['-s', '5G', ssd]);
  const logFile = join(env.logDir, 'node1-bundle.log');
  const r = await boot({ disks: [sd, ssd], load: loadFromBootPartition(sd), nic: true, timeoutSeconds: 900, logFile });
  const why = diagnose(r);
  assert.not.ok(why, `${why} (console log: ${logFile})`);
  const m = markers(r.log);
  const one = (k: string) => m.get(k)?.map((v) => v.replace(/\s+/g, ' ').trim()).join('\n') ?? '';
  assert.is(one('placed'), `${payloadSha} /opt/bundled/payload.bin`, 'the bundled file, byte for byte');
  assert.is(one('mode'), '640');
  assert.is(one('parts'), '1', 'the bundle partition was freed');
  assert.is(one('root-sectors'), '8388608', 'the root grew to ssd.rootSize past the moved bundle');
  assert.ok(Number(one('root-fs-mib')) > 3700, `the root ext4 grew with it (${one('root-fs-mib')} MiB)`);
  assert.match(one('steps'), /\bbundle\b/);
  const log = one('log');
  assert.match(log, /moving the bundle/);
  assert.match(log, /\d+ items checked \(sha256\)/);
  assert.match(log, /from the bundle: http:\/\/127\.0\.0\.1:\d+\/payload\.bin \(sha256 [0-9a-f]{64}\)/);
  assert.match(log, /placed \/opt\/bundled\/payload\.bin/);
  assert.match(lock, /package: containerd\b/, 'containerd is pinned in the lock');
  assert.match(lock, /package: runc\b/);
  assert.match(log, /\d+ apt items checked \(sha256\)/);
  assert.match(log, /installing from the bundle \(no network\):.* containerd runc tree/);
  assert.match(log, /installed from the bundle in \d+s/);
  assert.match(one('tree'), /^tree v\d/, 'tree, installed from the bundle, runs');
  assert.match(one('runc'), /^runc version \d/);
  assert.match(log, /loading .*tools\/hello:1\.0/);
  assert.is(one('imported'), '1', 'the image archive was imported into containerd (k8s.io namespace)');
  assert.is(one('container'), 'hello from the bundled image', 'the bundled image ran once (not "failed N")');
  assert.ok(r.poweredOff, 'clean power-off');
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
