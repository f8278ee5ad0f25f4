// The real thing: `pi-image build` turns the Debian stand-in base image into node1's sd.img + ssd.img; QEMU boots
// them as two virtio disks with the kernel, initrd and cmdline read from the SD's boot partition, and the serial
// console shows cloud-init applying the seed (root from the SSD by the PARTUUID pi-image wrote, /boot/firmware from
// the SD, hostname, user and key, files, static address, runcmd markers, scrubbed seed, clean power-off).
// Negative case: the SD's cmdline names a root PARTUUID that no disk has → the boot stops with a clear message.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepare } from './prepare.ts';
import { boot, loadFromBootPartition } from './qemu.ts';
import { partitionOffset, readFat, writeFat } from './layout.ts';
import { diagnose, formatTimeline, markers, timeline } from './console.ts';
import { toolEnv } from './sh.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const env = await prepare();
if (env.skip) console.log(`SKIP first-boot suite (node boot): ${env.skip}`);
const it = env.skip ? test.skip : test;

const work = mkdtempSync(join(tmpdir(), 'pi-image-boot-node-'));
let built: { sd: string; ssd: string; partUuid: string } | undefined;

function buildNode(): { sd: string; ssd: string; partUuid: string } {
  if (built) return built;
  const out = join(work, 'out');
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'bin/pi-image.js'), 'build', 'node1', '--profile', join(here, 'profile.yaml'), '--image', env.base!.path,
      '--out', out, '--cache', join(work, 'cache'), '--secrets', join(work, 'secrets'), '--json',
    ],
    { env: { ...toolEnv, SOURCE_DATE_EPOCH: '1577836800' }, encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  assert.is(r.status, 0, `pi-image build failed: ${r.stderr}`);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const node = events.find((e) => e.event === 'node') as { rootPartUuid: string } | undefined;
  assert.ok(node, 'build reports the node');
  built = { sd: join(out, 'node1', 'sd.img'), ssd: join(out, 'node1', 'ssd.img'), partUuid: node!.rootPartUuid };
  return built;
}

it('build: node1 from the Debian stand-in (bzImage kept as is, cmdline names the SSD PARTUUID)', () => {
  const b = buildNode();
  const load = loadFromBootPartition(b.sd);
  assert.is(load.kernel, 'vmlinuz', 'a bzImage is not gzip: pi-image must boot it as it is');
  assert.is(load.kernelBytes.subarray(0x202, 0x206).toString('latin1'), 'HdrS');
  assert.match(load.cmdline, new RegExp(`root=PARTUUID=${b.partUuid}( |$)`));
  const sig = readFileSync(b.ssd).subarray(440, 444).readUInt32LE(0).toString(16).padStart(8, '0');
  assert.is(`${sig}-01`, b.partUuid, 'the PARTUUID is the SSD image disk signature, partition 1');
});

it('first boot: SD + SSD boot to a clean power-off with the seed applied', async () => {
  const b = buildNode();
  const load = loadFromBootPartition(b.sd);
  const logFile = join(env.logDir, 'node1.log');
  const lines: { seconds: number; line: string }[] = [];
  const t0 = Date.now();
  const r = await boot({
    disks: [b.sd, b.ssd],
    load,
    nic: true,
    timeoutSeconds: 420,
    logFile,
    onLine: (line) => lines.push({ seconds: (Date.now() - t0) / 1000, line }),
  });
  const t = formatTimeline(timeline(lines));
  writeFileSync(join(env.logDir, 'node1.timeline.txt'), `${t}\n`);
  const why = diagnose(r);
  assert.not.ok(why, `${why} (console log: ${logFile})`);
  const m = markers(r.log);
  const one = (k: string) => m.get(k)?.map((v) => v.replace(/\s+/g, ' ').trim()).join('\n');
  assert.is(one('root'), `/dev/vdb1 ext4 ${b.partUuid}`, 'root mounted from the SSD by the PARTUUID pi-image wrote');
  assert.is(one('boot'), '/dev/vda1 vfat system-boot', '/boot/firmware from the SD');
  assert.is(one('hostname'), 'node1');
  assert.is(one('fqdn'), 'node1.boot.test');
  assert.match(one('user') ?? '', /^uid=\d+\(tester\) .*\bsudo\b/);
  assert.match(one('key') ?? '', /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq1XqfV0ClSaFQ7x6MjRQz3Hh3Gmv0T6ZKPR0AhX9yE boot@pi-image-test$/m);
  assert.is(one('file'), 'written by cloud-init write_files from the pi-image profile');
  assert.is(one('file-mode'), '640');
  assert.match(one('addr') ?? '', /eth0 inet 10\.0\.2\.50\/24/, 'static address from network-config');
  assert.match(one('route') ?? '', /default via 10\.0\.2\.2 dev eth0/);
  assert.match(one('cmdline') ?? '', new RegExp(`root=PARTUUID=${b.partUuid}`));
  assert.equal(m.get('runcmd'), ['extra-ran'], 'the profile\'s extra runcmd ran');
  assert.match(one('steps') ?? '', /base[\s\S]*scrub/, 'pi-image first-boot steps base and scrub done');
  assert.is(one('seed-scrubbed'), 'yes', 'the SD seed was replaced by the scrubbed user-data');
  assert.is(one('seed-secrets'), '0', 'no secret left in the seed');
  assert.match(one('cloud-init') ?? '', /status: done/);
  assert.ok(r.poweredOff, 'clean power-off');
  console.log(`node1 booted to power-off in ${r.seconds.toFixed(1)} s\n${t}`);
});

it('negative: a wrong root PARTUUID on the SD stops the boot with a clear message', async () => {
  const b = buildNode();
  const sd = join(work, 'sd-wrong-root.img');
  copyFileSync(b.sd, sd);
  const { offset } = partitionOffset(sd, 1);
  const load0 = loadFromBootPartition(sd);
  const wrong = 'deadbeef-01';
  // rootdelay: the initramfs would wait 180 s by default before giving up; 10 s keeps the test short.
  const text = readFat(sd, offset, load0.cmdlineFile)!.toString('utf8').replace(/root=PARTUUID=\S+/, `root=PARTUUID=${wrong}`).trim() + ' rootdelay=10\n';
  writeFat(sd, offset, load0.cmdlineFile, text);
  const load = loadFromBootPartition(sd);
  assert.match(load.cmdline, /root=PARTUUID=deadbeef-01/);
  const r = await boot({
    disks: [sd, b.ssd],
    load,
    timeoutSeconds: 180,
    logFile: join(env.logDir, 'node1-wrong-root.log'),
    stopWhen: /ALERT!.*does not exist/,
  });
  const why = diagnose(r);
  assert.ok(why, 'the boot must not succeed');
  assert.is(why, `root file system not found: PARTUUID=${wrong} does not exist (the initramfs gave up waiting for it)`);
  assert.not.ok(r.poweredOff);
  console.log(`wrong PARTUUID: "${why}" after ${r.seconds.toFixed(1)} s`);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
