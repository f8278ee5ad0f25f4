// The stand-in base image alone boots like a Pi would: kernel, initrd and cmdline from its boot partition (resolved
// through config.txt), root found by LABEL=writable, cloud-init reading the NoCloud seed from `system-boot`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepare } from './prepare.ts';
import { boot, loadFromBootPartition } from './qemu.ts';
import { partitionOffset, writeFat } from './layout.ts';
import { diagnose, formatTimeline, markCmd, markers, timeline } from './console.ts';
import { run } from './sh.ts';

const env = await prepare();
if (env.skip) console.log(`SKIP first-boot suite (base image): ${env.skip}`);
const it = env.skip ? test.skip : test;

it('base image: layout is the Ubuntu raspi layout (MBR, FAT32 system-boot, ext4 writable)', () => {
  const img = env.base!.path;
  const t = JSON.parse(run('sfdisk', ['--json', img])).partitiontable;
  assert.is(t.label, 'dos');
  assert.is(t.partitions[0].start, 2048);
  assert.is(t.partitions[0].type, 'c');
  assert.is(t.partitions[1].start, 526336);
  assert.is(t.partitions[1].type, '83');
  const { offset } = partitionOffset(img, 1);
  const dir = run('mdir', ['-i', `${img}@@${offset}`, '-b', '::/']);
  for (const f of ['vmlinuz', 'initrd.img', 'config.txt', 'nobtcmd.txt', 'user-data', 'meta-data', 'network-config']) {
    assert.ok(dir.toLowerCase().includes(`::/${f}`), `system-boot holds ${f}`);
  }
  const label = run('minfo', ['-i', `${img}@@${offset}`, '::']);
  assert.match(label, /disk label="system-boot"/);
  const load = loadFromBootPartition(img);
  assert.is(load.kernel, 'vmlinuz');
  assert.is(load.initramfs, 'initrd.img');
  assert.is(load.cmdlineFile, 'nobtcmd.txt');
  assert.match(load.cmdline, /root=LABEL=writable/);
  // A bzImage (x86 boot protocol magic "HdrS" at 0x202), not gzip: pi-image must leave it as it is.
  assert.is(load.kernelBytes.subarray(0x202, 0x206).toString('latin1'), 'HdrS');
});

// The node boot (node.test.ts) proves the same root fs through pi-image; booting the base image alone is a
// diagnostic for when that fails, so it runs only when asked (PI_IMAGE_BOOT_BASE=1) and CI saves ~1.5 min.
const itBoot = env.skip || process.env.PI_IMAGE_BOOT_BASE !== '1' ? test.skip : test;
if (!env.skip && process.env.PI_IMAGE_BOOT_BASE !== '1') console.log('SKIP base-image boot (set PI_IMAGE_BOOT_BASE=1 to boot the base image alone)');

itBoot('base image: boots from its own boot partition, root by LABEL, seed applied, clean power-off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pi-image-boot-base-'));
  try {
    const img = join(dir, 'base.img');
    copyFileSync(env.base!.path, img, constants.COPYFILE_FICLONE); // reflink where possible; sparse-agnostic otherwise
    const { offset } = partitionOffset(img, 1);
    writeFat(img, offset, 'meta-data', 'instance-id: base-boot-1\nlocal-hostname: base-boot\n');
    writeFat(
      img,
      offset,
      'user-data',
      [
        '#cloud-config',
        'runcmd:',
        `  - ${JSON.stringify(markCmd('root', 'findmnt -n -o SOURCE,FSTYPE /'))}`,
        `  - ${JSON.stringify(markCmd('boot', 'findmnt -n -o SOURCE,FSTYPE /boot/firmware'))}`,
        `  - ${JSON.stringify(markCmd('hostname', 'hostname'))}`,
        'power_state:',
        '  mode: poweroff',
        '  condition: true',
        '',
      ].join('\n'),
    );
    const load = loadFromBootPartition(img);
    const t0 = Date.now();
    const lines: { seconds: number; line: string }[] = [];
    const r = await boot({
      disks: [img],
      load,
      nic: true,
      timeoutSeconds: 240,
      logFile: join(env.logDir, 'base.log'),
      onLine: (line) => lines.push({ seconds: (Date.now() - t0) / 1000, line }),
    });
    const why = diagnose(r);
    assert.not.ok(why, `${why} (console log: ${join(env.logDir, 'base.log')})`);
    const m = markers(r.log);
    assert.equal(m.get('root'), ['/dev/vda2 ext4']);
    assert.equal(m.get('boot'), ['/dev/vda1 vfat']);
    assert.equal(m.get('hostname'), ['base-boot']);
    console.log(`base image booted to power-off in ${r.seconds.toFixed(1)} s\n${formatTimeline(timeline(lines))}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
