// First boot from the bundle, for real: `pi-image lock --fetch` against a registry (docker-registry + skopeo) and a
// file server on 127.0.0.1, for the platform read from the Debian stand-in (amd64: the lock must pick the amd64
// variant of a two-platform image), then `pi-image build --offline`; QEMU boots the node with its guest network
// restricted (no route to either server). On the console: the bundle step moves SSD p2 past the root's final
// size, grows the root, extracts and sha256-checks the bundle, places the profile's file (its sha256 checked
// again on the node), frees p2; the images step re-checks the image archive's sha256 and stops at the import
// (the stand-in has no container runtime until the apt bundle lands), naming the archive.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepare } from './prepare.ts';
import { boot, loadFromBootPartition } from './qemu.ts';
import { diagnose, markers } from './console.ts';
import { toolEnv } from './sh.ts';
import { startRegistry, makeOciLayout, pushImage } from '../helpers/registry.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const env = await prepare();
if (env.skip) console.log(`SKIP first-boot suite (bundle boot): ${env.skip}`);
const it = env.skip ? test.skip : test;
const work = mkdtempSync(join(tmpdir(), 'pi-image-boot-bundle-'));

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

it('first boot places a bundled file (sha256 checked on the node) and checks the image archive up to the import', async () => {
  const registry = await startRegistry(join(work, 'registry'));
  const img = makeOciLayout(join(work, 'oci'), '1.0', ['arm64', 'amd64']);
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
  - "echo PIIMG-MARK steps $(ls /var/lib/pi-image/done | tr '\\\\n' ' ') > /dev/console"
  - "grep -E 'pi-image\\\\[(bundle|images)\\\\]' /var/log/cloud-init-output.log | sed 's/^/PIIMG-MARK log /' > /dev/console"
  - "echo PIIMG-MARK poweroff now > /dev/console; poweroff"
`,
  );
  let lockOut: string;
  try {
    lockOut = await cli(['lock', '--fetch', '--profile', profile, '--image', env.base!.path, '--cache', join(work, 'cache'), '--json']);
  } finally {
    files.close();
    await registry.stop();
  }
  const lockResult = JSON.parse(lockOut.trim().split('\n').pop()!);
  assert.is(lockResult.platform, 'linux/amd64', 'the platform is read from the stand-in, not assumed');
  const lock = readFileSync(join(pdir, 'pi-image.lock'), 'utf8');
  assert.match(lock, new RegExp(`digest: ${img.manifests.amd64}`), 'the amd64 manifest was picked from the index');
  const out = join(work, 'out');
  await cli(['build', 'node1', '--offline', '--profile', profile, '--image', env.base!.path, '--out', out, '--cache', join(work, 'cache'), '--secrets', join(work, 'secrets'), '--json']);
  const sd = join(out, 'node1', 'sd.img');
  const ssd = join(work, 'ssd-5g.img');
  spawnSync('cp', ['--sparse=always', join(out, 'node1', 'ssd.img'), ssd]);
  spawnSync('truncate', ['-s', '5G', ssd]);
  const logFile = join(env.logDir, 'node1-bundle.log');
  const r = await boot({ disks: [sd, ssd], load: loadFromBootPartition(sd), nic: true, timeoutSeconds: 480, logFile });
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
  assert.match(log, /pi-image\[bundle\]: FAILED: no container runtime \(ctr or docker\) to load pi-image-bundle\/images\/.*hello_1\.0\.tar \(.*tools\/hello:1\.0\) into; sha256 checked/);
  assert.ok(r.poweredOff, 'clean power-off');
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
