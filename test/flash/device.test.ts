// flash to real block devices (loop devices made for the test): a normal flash verified, refusals for a mounted
// device (lifted by --unmount), a device smaller than the image, and the CLI without a TTY and without --yes
// (exit 3). Also the pure safety rules. Loop tests are skipped, with the reason printed, where losetup is denied.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, truncateSync, openSync, readSync, closeSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flash } from '../../lib/flash/flash.ts';
import { assessTarget, enforce } from '../../lib/flash/safety.ts';
import type { Drive, Target } from '../../lib/flash/drives.ts';
import { SafetyError } from '../../lib/errors.ts';
import { dataRangesOfFile } from '../../lib/image/sparse.ts';
import { scatteredImage, MiB } from '../helpers/scattered-image.ts';
import { attachLoop, mountedLoop, type Loop } from '../helpers/loopdev.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'pi-image-flashdev-'));
const loops: Loop[] = [];
test.after(() => {
  for (const l of loops) l.detach();
  rmSync(dir, { recursive: true, force: true });
});
const SIZE = 24 * MiB;
const img = join(dir, 'disk.img');
scatteredImage(img, SIZE, [{ start: 700 * 1024, length: 50 * 1024 }, { start: 3 * MiB, length: 2 * MiB }, { start: SIZE - 4096, length: 4096 }], { mbr: true });

/** The flash must be refused with a SafetyError whose message matches. */
async function refusedWith(attempt: Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await attempt;
    assert.unreachable('the flash should have been refused');
  } catch (err) {
    assert.instance(err, SafetyError);
    assert.match((err as Error).message, message);
  }
}

function backing(name: string, size: number): string {
  const p = join(dir, name);
  writeFileSync(p, '');
  truncateSync(p, size);
  return p;
}
function loopOrSkip(l: Loop | string, what: string): Loop | undefined {
  if (typeof l === 'string') {
    console.log(`  skipped (${what}): ${l}`);
    return undefined;
  }
  loops.push(l);
  return l;
}
const cli = (args: string[]) =>
  spawnSync(process.execPath, [join(root, 'bin/pi-image.js'), ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });

/** Every non-zero 4 KiB block of the image reads back the same from the device (checked outside our flash code). */
function assertMappedEqual(image: string, device: string): void {
  const a = openSync(image, 'r');
  const b = openSync(device, 'r');
  try {
    for (const r of dataRangesOfFile(image)) {
      const x = Buffer.alloc(r.length);
      const y = Buffer.alloc(r.length);
      readSync(a, x, 0, r.length, r.start);
      readSync(b, y, 0, r.length, r.start);
      assert.ok(x.equals(y), `range ${r.start}+${r.length} differs`);
    }
  } finally {
    closeSync(a);
    closeSync(b);
  }
}

const drive = (over: Partial<Drive>): Drive => ({
  path: '/dev/sdz', name: 'sdz', type: 'disk', size: 32e9, removable: true, hotplug: true, readOnly: false, transport: 'usb',
  majMin: '8:200', mountpoints: [], children: [], model: 'Ultra', vendor: 'SanDisk', ...over,
});
const dev = (d: Drive, partition = false): Target => ({ kind: 'device', path: d.path, size: d.size, drive: d, partition, stats: {} as never });
const codes = (t: Target, imageSize = 1e9, system: Drive[] = [], source: Drive[] = []) =>
  assessTarget(t, { imageSize, systemDrives: system, sourceDrives: source }).findings.map((f) => `${f.level}:${f.code}`);

test('safety rules: hard, mounted, soft and warnings', () => {
  const usb = drive({});
  assert.equal(codes(dev(usb)), []);
  assert.equal(codes(dev(usb), 64e9), ['refuse:too-small']);
  assert.equal(codes(dev(usb), 1e9, [usb]), ['refuse:system']);
  assert.equal(codes(dev(usb), 1e9, [], [usb]), ['refuse:source']);
  assert.equal(codes(dev(drive({ mountpoints: ['/media/x'] }))), ['mounted:mounted']);
  assert.equal(codes(dev(drive({ removable: false, hotplug: false, transport: 'sata' }))), ['soft:internal']);
  assert.equal(codes(dev(usb, true)), ['soft:partition']);
  assert.equal(codes(dev(drive({ size: 4e12 }))), ['warn:large']);
  assert.equal(codes(dev(drive({ readOnly: true }))), ['refuse:read-only']);
  const soft = assessTarget(dev(drive({ transport: 'nvme', removable: false, hotplug: false })), { imageSize: 1, systemDrives: [], sourceDrives: [] }).findings;
  assert.throws(() => enforce(soft, {}), (e: unknown) => e instanceof SafetyError && /--force/.test((e as SafetyError).hint ?? ''));
  assert.is(enforce(soft, { force: true }).length, 1);
  const mounted = assessTarget(dev(drive({ mountpoints: ['/mnt'] })), { imageSize: 1, systemDrives: [], sourceDrives: [] }).findings;
  assert.throws(() => enforce(mounted, { force: true }), /mounted/);
  enforce(mounted, { unmount: true });
  const hard = assessTarget(dev(usb), { imageSize: 1, systemDrives: [usb], sourceDrives: [] }).findings;
  assert.throws(() => enforce(hard, { force: true, unmount: true }), /running system/);
});

test('flash to a loop device: mapped ranges equal the image, verified', async () => {
  const l = loopOrSkip(attachLoop(backing('dev1', 32 * MiB)), 'flash to a loop device');
  if (!l) return;
  // Old content in the first MiB and beyond must not matter.
  execFileSync('dd', [`if=${img}`, `of=${l.dev}`, 'bs=1M', 'count=1', 'conv=fsync', 'status=none']);
  const r = await flash({ image: img, target: l.dev, yes: true });
  assert.is(r.targetKind, 'device');
  assert.ok(r.verified);
  execFileSync('cmp', ['-n', String(SIZE), img, l.dev]);
});

test('a mounted loop device is refused; --unmount unmounts it and writes', async () => {
  const l = loopOrSkip(mountedLoop(backing('dev2', 32 * MiB)), 'mounted loop device');
  if (!l) return;
  await refusedWith(flash({ image: img, target: l.dev, yes: true, force: true }), /is mounted at/);
  const fd = openSync(l.dev, 'r');
  const sb = Buffer.alloc(2);
  readSync(fd, sb, 0, 2, 1024 + 0x38);
  closeSync(fd);
  assert.is(sb.readUInt16LE(0), 0xef53, 'the mounted ext4 is untouched');
  const r = await flash({ image: img, target: l.dev, yes: true, unmount: true });
  assert.equal(r.unmounted, [l.mountpoint]);
  // Blocks outside the map keep the old ext4's bytes (bmap semantics); every mapped range equals the image.
  assert.ok(r.mappedBytes < SIZE);
  assertMappedEqual(img, l.dev);
});

test('a loop device smaller than the image is refused, even with --force', async () => {
  const l = loopOrSkip(attachLoop(backing('small', 16 * MiB)), 'small loop device');
  if (!l) return;
  await refusedWith(flash({ image: img, target: l.dev, yes: true, force: true }), /smaller than the image/);
});

test('CLI: no TTY and no --yes exits 3 without writing; --yes writes; --json lines', () => {
  const notes = join(dir, 'notes.txt');
  writeFileSync(notes, 'keep me\n');
  const r = cli(['flash', img, notes]);
  assert.is(r.status, 3, r.stderr.toString());
  assert.match(r.stderr.toString(), /confirmation needed/);
  assert.match(r.stderr.toString(), /--yes/);
  const l = attachLoop(backing('dev3', 32 * MiB));
  if (typeof l === 'string') console.log(`  skipped (CLI on a loop device): ${l}`);
  else {
    loops.push(l);
    const d = cli(['flash', img, l.dev]);
    assert.is(d.status, 3, d.stderr.toString());
    const ok = cli(['flash', img, l.dev, '--yes', '--json']);
    assert.is(ok.status, 0, ok.stderr.toString());
    const events = ok.stdout.toString().trim().split('\n').map((x) => JSON.parse(x));
    assert.ok(events.some((e) => e.event === 'progress' && e.phase === 'verify'));
    const result = events.find((e) => e.event === 'result');
    assert.is(result.results[0].targetKind, 'device');
    execFileSync('cmp', ['-n', String(SIZE), img, l.dev]);
  }
  const f = cli(['flash', img, join(dir, 'new.img')]);
  assert.is(f.status, 0, f.stderr.toString());
  execFileSync('cmp', [img, join(dir, 'new.img')]);
  const u = cli(['flash', img]);
  assert.is(u.status, 2);
});

test.run();
