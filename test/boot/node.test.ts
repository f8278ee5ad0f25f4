// The real thing: `pi-image build` turns the Debian stand-in base image into node1's sd.img + ssd.img; QEMU boots
// them as two virtio disks with the kernel, initrd and cmdline read from the SD's boot partition, and the serial
// console shows cloud-init applying the seed (root from the SSD by the PARTUUID pi-image wrote, /boot/firmware from
// the SD, hostname, user and key, files, static address, runcmd markers, scrubbed seed, clean power-off).
// Negative cases: the SD's cmdline names a root PARTUUID that no disk has → the boot stops with a clear message;
// the SD's user-data is not valid YAML → cloud-init's complaint (line and column) is found on the console.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepare } from './prepare.ts';
import { boot, loadFromBootPartition, type BootResult } from './qemu.ts';
import { partitionOffset, readFat, writeFat } from './layout.ts';
import { diagnose, formatTimeline, markers, seedProblems, timeline } from './console.ts';
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
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'bin/pi-image.js'), 'build', 'node1', '--profile', join(here, 'profile.yaml'), '--image', env.base!.path,
      '--out', out, '--cache', join(work, 'cache'), '--secrets', join(work, 'secrets'), '--json',
    ],
    { env: { ...toolEnv, SOURCE_DATE_EPOCH: '1577836800' }, encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  assert.is(r.status, 0, `pi-image build failed: ${r.stderr}`);
  console.log(`pi-image build node1: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
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
  // The seed as built is the full one (it carries the scrubbed copy as a write_files entry); the boot test checks
  // that this entry is gone from the SD after first boot, so the check would catch a scrub that did nothing.
  const seed = readFat(b.sd, partitionOffset(b.sd, 1).offset, 'user-data')!.toString('utf8');
  assert.match(seed, /^\s*- path: \/etc\/pi-image\/user-data\.scrubbed$/m, 'the built seed is the full one');
  const sig = readFileSync(b.ssd).subarray(440, 444).readUInt32LE(0).toString(16).padStart(8, '0');
  assert.is(`${sig}-01`, b.partUuid, 'the PARTUUID is the SSD image disk signature, partition 1');
});

it('first boot: SD + SSD boot to a clean power-off with the seed applied', async () => {
  const b = buildNode();
  const load = loadFromBootPartition(b.sd);
  const logFile = join(env.logDir, 'node1.log');
  const lines: { seconds: number; line: string }[] = [];
  const t0 = Date.now();
  // A 5 GiB SSD: the image (p1 as large as its ext4) copied sparse and extended, as if flashed to a bigger disk.
  const ssd = join(work, 'ssd-5g.img');
  spawnSync('cp', ['--sparse=always', b.ssd, ssd]);
  spawnSync('truncate', ['-s', '5G', ssd]);
  const imageRootSectors = Number(JSON.parse(spawnSync('sfdisk', ['--json', b.ssd], { env: toolEnv, encoding: 'utf8' }).stdout).partitiontable.partitions[0].size);
  const r = await boot({
    disks: [b.sd, ssd],
    load,
    nic: true,
    timeoutSeconds: 600,
    logFile,
    onLine: (line) => lines.push({ seconds: (Date.now() - t0) / 1000, line }),
  });
  const t = formatTimeline(timeline(lines));
  writeFileSync(join(env.logDir, 'node1.timeline.txt'), `${t}\n`);
  const why = diagnose(r);
  assert.not.ok(why, `${why} (console log: ${logFile})`);
  assert.equal(seedProblems(r.log), [], 'cloud-init accepted the seed (no YAML or schema complaint on the console)');
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
  assert.ok(imageRootSectors < 8388608, `the image's p1 (${imageRootSectors} sectors) is smaller than ssd.rootSize`);
  assert.is(one('root-sectors'), '8388608', 'bootcmd grew p1 to ssd.rootSize (4 GiB)');
  assert.ok(Number(one('root-fs-mib')) > 3700, `resize_rootfs grew the ext4 with it (${one('root-fs-mib')} MiB)`);
  assert.equal(m.get('runcmd'), ['extra-ran'], 'the profile\'s extra runcmd ran');
  assert.match(one('steps') ?? '', /base[\s\S]*scrub/, 'pi-image first-boot steps base and scrub done');
  assert.is(one('seed-scrubbed'), 'yes', 'the SD seed was replaced by the scrubbed user-data');
  assert.is(one('seed-full'), '0', 'the full seed is gone from the SD');
  assert.is(one('seed-secrets'), '0', 'no private key or token in the seed left on the SD');
  assert.match(one('cloud-init') ?? '', /"errors":\[\]/, 'cloud-init finished every stage without an error (result.json)');
  // The kernel is a bzImage, not gzip: the first-boot kernel hook must leave it alone (no vmlinux next to it).
  assert.is(one('fw-vmlinux'), '0', 'no vmlinux decompressed from a kernel that is not gzip');
  assert.not.match(r.log, /vmlinux check failed/);
  assert.ok(r.poweredOff, 'clean power-off');
  console.log(`node1 booted to power-off in ${r.seconds.toFixed(1)} s\n${t}`);
});

// The two negative boots run at the same time (after the node1 boot, whose timeline they would otherwise disturb):
// the wrong-PARTUUID guest spends most of its ~50 s asleep in the initramfs's root wait, so the pair costs little
// more than the longer of the two.
const WRONG = 'deadbeef-01';
let negatives: { wrongRoot: Promise<BootResult>; badUserData: Promise<BootResult> } | undefined;

function startNegatives(): NonNullable<typeof negatives> {
  if (negatives) return negatives;
  const b = buildNode();

  const wrongSd = join(work, 'sd-wrong-root.img');
  copyFileSync(b.sd, wrongSd);
  const wOff = partitionOffset(wrongSd, 1).offset;
  const cmdlineFile = loadFromBootPartition(wrongSd).cmdlineFile;
  // No rootdelay: Debian's initramfs gives up after max(30, rootdelay) s counted from its start, and `rootdelay=N`
  // would only add an N s sleep before it starts looking.
  const text = readFat(wrongSd, wOff, cmdlineFile)!.toString('utf8').replace(/root=PARTUUID=\S+/, `root=PARTUUID=${WRONG}`);
  writeFat(wrongSd, wOff, cmdlineFile, text);
  const wrongLoad = loadFromBootPartition(wrongSd);
  assert.match(wrongLoad.cmdline, new RegExp(`root=PARTUUID=${WRONG}( |$)`));

  const badSd = join(work, 'sd-bad-user-data.img');
  copyFileSync(b.sd, badSd);
  const bOff = partitionOffset(badSd, 1).offset;
  const good = readFat(badSd, bOff, 'user-data')!.toString('utf8');
  // An unclosed flow sequence on line 2, right under `#cloud-config`: a typo a hand edit of the seed could make.
  const bad = good.replace(/^#cloud-config\n/, '#cloud-config\nhostname: [node1\n');
  assert.is.not(bad, good);
  writeFat(badSd, bOff, 'user-data', bad);

  negatives = {
    wrongRoot: boot({
      disks: [wrongSd, b.ssd],
      load: wrongLoad,
      timeoutSeconds: 180,
      logFile: join(env.logDir, 'node1-wrong-root.log'),
      stopWhen: /ALERT!.*does not exist/,
    }),
    badUserData: boot({
      disks: [badSd, b.ssd],
      load: loadFromBootPartition(badSd),
      nic: true,
      timeoutSeconds: 300,
      logFile: join(env.logDir, 'node1-bad-user-data.log'),
      stopWhen: /Failed loading yaml blob|Invalid cloud-config provided/,
    }),
  };
  // Each test awaits its own; a rejection must not go unhandled while the other test is running.
  negatives.wrongRoot.catch(() => {});
  negatives.badUserData.catch(() => {});
  return negatives;
}

it('negative: a wrong root PARTUUID on the SD stops the boot with a clear message', async () => {
  const r = await startNegatives().wrongRoot;
  const why = diagnose(r);
  assert.ok(why, 'the boot must not succeed');
  assert.is(why, `root file system not found: PARTUUID=${WRONG} does not exist (the initramfs gave up waiting for it)`);
  assert.not.ok(r.poweredOff);
  // The SSD was there (so the failure is the name on the command line, not a missing driver or disk).
  assert.match(r.log, /virtio_blk \S+: \[vdb\]/, 'the SSD disk (vdb) was detected by the initramfs kernel');
  console.log(`wrong PARTUUID: "${why}" after ${r.seconds.toFixed(1)} s`);
});

it('negative: a seed whose user-data is not valid YAML is reported with its line and column', async () => {
  const r = await startNegatives().badUserData;
  const found = seedProblems(r.log);
  assert.ok(found.length > 0, `cloud-init did not complain about the broken user-data: ${diagnose(r) ?? 'the boot went on'}`);
  assert.match(found[0], /^Failed loading yaml blob\. Invalid format at line 2 column \d+/);
  assert.not.ok(r.poweredOff, 'stopped at the complaint, before any power-off');
  console.log(`invalid user-data: "${found[0]}" after ${r.seconds.toFixed(1)} s (run beside the wrong-PARTUUID boot)`);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
