// The one boot/root locator: by the catalog's numbers (checked against what the partitions hold when a probe is
// given), else by content; over tables read by readTable from images sfdisk, mkfs.vfat and mkfs.ext4 made.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO } from '../../lib/image/io.ts';
import { readTable } from '../../lib/image/partition-table.ts';
import { partitionProbe } from '../../lib/image/probe.ts';
import { locateBootRoot, locatePartition } from '../../lib/pi/partitions.ts';
import { DEFAULT_BOOT } from '../../lib/source/catalog.ts';
import { CorruptImageError } from '../../lib/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-locate-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const run = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { env, input, stdio: ['pipe', 'pipe', 'pipe'] });

/** A disk: p1 empty (type 83, no filesystem), p2 FAT32, p3 ext4, p4 ext4; in an MBR or a GPT. */
function disk(label: 'dos' | 'gpt'): string {
  const img = join(dir, `${label}.img`);
  writeFileSync(img, '');
  truncateSync(img, 100 << 20);
  const L = label === 'gpt' ? 'L' : '83';
  const F = label === 'gpt' ? 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7' : 'c';
  run('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', img],
    `label: ${label}\nstart=2048, size=2048, type=${L}\nstart=4096, size=81920, type=${F}\nstart=86016, size=32768, type=${L}\nstart=118784, size=32768, type=${L}\n`);
  run('mkfs.vfat', ['-F', '32', '--offset', '4096', img, String(81920 / 2)]);
  run('mkfs.ext4', ['-q', '-F', '-E', `offset=${86016 * 512}`, img, '16M']);
  run('mkfs.ext4', ['-q', '-F', '-E', `offset=${118784 * 512}`, img, '16M']);
  return img;
}

for (const label of ['dos', 'gpt'] as const) {
  test(`${label}: by content the boot is the first FAT partition and the root the last ext4 one`, () => {
    const io = FileIO.open(disk(label));
    const t = readTable(io);
    const { boot, root } = locateBootRoot(t, { name: 'd.img', probe: partitionProbe(io) });
    assert.is(boot.index, 2);
    assert.is(root.index, 4);
    io.close();
  });

  test(`${label}: the catalog's numbers win, and with a probe a number that holds the wrong filesystem is refused`, () => {
    const io = FileIO.open(join(dir, `${label}.img`));
    const t = readTable(io);
    const spec = { ...DEFAULT_BOOT, bootPartition: 2, rootPartition: 3 };
    assert.is(locatePartition(t, 'root', { name: 'd.img', spec }).index, 3);
    assert.is(locatePartition(t, 'root', { name: 'd.img', spec, probe: partitionProbe(io) }).index, 3);
    // DEFAULT_BOOT says 1 and 2: without a probe the numbers are trusted, with one p1 (no filesystem) is refused.
    assert.is(locatePartition(t, 'boot', { name: 'd.img', spec: DEFAULT_BOOT }).index, 1);
    assert.throws(
      () => locatePartition(t, 'boot', { name: 'd.img', spec: DEFAULT_BOOT, probe: partitionProbe(io) }),
      (e: unknown) => e instanceof CorruptImageError && /d\.img: partition 1 \(boot\) holds no FAT or ext4 filesystem, not a FAT boot partition/.test(e.message),
    );
    assert.throws(
      () => locatePartition(t, 'root', { name: 'd.img', spec: { ...spec, rootPartition: 7 } }),
      (e: unknown) => e instanceof CorruptImageError && /d\.img: no partition 7 \(root\); the catalog entry says it should be there/.test(e.message),
    );
    io.close();
  });
}

test('an image without a FAT partition: no boot partition, named with the table kind', () => {
  const img = join(dir, 'nofat.img');
  writeFileSync(img, '');
  truncateSync(img, 40 << 20);
  run('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', img], 'label: dos\nstart=2048, type=83\n');
  run('mkfs.ext4', ['-q', '-F', '-E', `offset=${2048 * 512}`, img, '16M']);
  const io = FileIO.open(img);
  assert.throws(
    () => locateBootRoot(readTable(io), { name: 'nofat.img', probe: partitionProbe(io) }),
    (e: unknown) => e instanceof CorruptImageError && /nofat\.img: no boot partition: need a FAT boot partition in its MBR \(partitions: 1\)/.test(e.message),
  );
  io.close();
});

test.run();
