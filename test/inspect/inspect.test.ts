// inspectImage / openPartition on lookalike images made by the real tools: the cmdline from nobtcmd.txt (not the
// stray cmdline.txt), seed, os-release, fstab; every boot and root file read back byte for byte.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FileIO } from '../../lib/image/io.ts';
import { inspectImage, openPartition, parsePartPath } from '../../lib/inspect/index.ts';
import { makeUbuntuLookalike, tempDir, type Lookalike } from '../helpers/lookalike.ts';

const dir = tempDir('pi-image-h6-inspect-');
const made: Record<string, Lookalike> = {};
const get = async (variant: 'oct2019' | 'late2019' | 'focal' | 'jammy') =>
  (made[variant] ??= await makeUbuntuLookalike(join(dir, variant), { variant, bootMiB: 40, rootMiB: 32, bulkBytes: 512 * 1024 }));

test('19.10.1 lookalike (oct2019): Pi 4 → uboot_rpi_4.bin, cmdline from nobtcmd.txt, not the unused cmdline.txt', async () => {
  const l = await get('oct2019');
  const r = inspectImage(l.img);
  assert.is(r.diskSignature, l.diskIdHex);
  assert.is(r.partitions.length, 2);
  const [p1, p2] = r.partitions;
  assert.equal(
    { n: p1.number, type: p1.type, boot: p1.bootable, lba: p1.startLba, sectors: p1.sectors, fs: p1.filesystem, label: p1.label, fat: p1.fatType },
    { n: 1, type: 0x0c, boot: true, lba: 2048, sectors: l.boot.sectors, fs: 'vfat', label: 'system-boot', fat: 32 },
  );
  const b = p1.piBoot!;
  assert.ok(b, 'boot partition recognised');
  assert.is(b.kernel, 'uboot_rpi_4.bin');
  assert.is(b.kernelPresent, true);
  assert.is(b.cmdlineFile, 'nobtcmd.txt');
  const nobtcmd = readFileSync(join(l.bootTree, 'nobtcmd.txt'), 'utf8').trim();
  const stray = readFileSync(join(l.bootTree, 'cmdline.txt'), 'utf8').trim();
  assert.is(b.cmdline, nobtcmd);
  assert.is.not(b.cmdline, stray);
  assert.ok(b.unusedCmdlineFiles.includes('cmdline.txt'));
  assert.equal(b.configFiles, ['config.txt', 'syscfg.txt', 'nobtcfg.txt', 'usercfg.txt']);
  assert.is(b.userConfigFile, 'usercfg.txt');
  assert.equal({ present: b.seed.present, ud: b.seed.userData, md: b.seed.metaData, nc: b.seed.networkConfig, id: b.seed.instanceId }, { present: true, ud: true, md: true, nc: true, id: undefined });
  assert.ok(b.seed.notes.some((n) => n.includes('instance_id')), 'the misspelt instance_id is pointed out');
  assert.ok(p1.usedBytes! > 3_000_000 && p1.usedBytes! < p1.fsSize!);

  assert.is(p2.filesystem, 'ext4');
  assert.is(p2.label, 'writable');
  assert.is(p2.partuuid, `${l.diskIdHex}-02`);
  assert.is(p2.root?.prettyName, 'Ubuntu 19.10');
  assert.equal(p2.root?.fstab?.map((e) => [e.spec, e.file, e.vfstype]), [
    ['LABEL=writable', '/', 'ext4'],
    ['LABEL=system-boot', '/boot/firmware', 'vfat'],
  ]);
  assert.is(p2.root?.hostname, 'ubuntu');
  assert.equal(p2.root?.cloudConfigFiles, ['99-fake_cloud.cfg']);
  assert.ok(p2.usedBytes! > 512 * 1024);
  assert.is(r.unpartitionedTail, 0);
});

test('late2019: cmdline with fixrtc from nobtcmd.txt', async () => {
  const b = inspectImage((await get('late2019')).img).partitions[0].piBoot!;
  assert.is(b.cmdlineFile, 'nobtcmd.txt');
  assert.ok(b.cmdline.endsWith('rootwait fixrtc'));
});

test('20.04-style: cmdline.txt; 22.04-style: vmlinuz (gzip) with initrd.img followkernel', async () => {
  const f = inspectImage((await get('focal')).img).partitions[0].piBoot!;
  assert.is(f.kernel, 'uboot_rpi_4.bin');
  assert.is(f.cmdlineFile, 'cmdline.txt');
  assert.ok(f.cmdline.includes('console=serial0,115200'));
  const j = inspectImage((await get('jammy')).img).partitions[0].piBoot!;
  assert.is(j.kernel, 'vmlinuz');
  assert.is(j.kernelKind, 'gzip');
  assert.equal(j.initramfs, { file: 'initrd.img', address: 'followkernel', present: true });
  assert.is(j.userConfigFile, undefined);
  assert.equal(j.unusedCmdlineFiles, []);
});

test('every boot file and root file reads back byte for byte (FAT and ext4 through one interface)', async () => {
  const l = await get('oct2019');
  const io = FileIO.open(l.img);
  try {
    const boot = openPartition(io, 1);
    assert.is(boot.kind, 'vfat');
    for (const f of l.bootFiles) assert.ok(Buffer.from(boot.readFile(f)).equals(readFileSync(join(l.bootTree, f))), f);
    const names = boot.list('/').map((e) => e.name).sort();
    assert.equal(names, [...new Set(l.bootFiles.map((f) => f.split('/')[0]))].sort());
    const root = openPartition(io, 2);
    assert.is(root.kind, 'ext4');
    for (const f of ['etc/fstab', 'etc/hosts', 'usr/lib/os-release', 'etc/os-release', 'usr/bin/tool0', 'usr/share/locale-lookalike/message-catalog-199.mo']) {
      assert.ok(Buffer.concat([...root.readChunks('/' + f)]).equals(readFileSync(join(l.rootTree, f))), f);
    }
    const etc = root.list('/etc');
    const link = etc.find((e) => e.name === 'os-release')!;
    assert.equal({ type: link.type, target: link.target }, { type: 'symlink', target: '../usr/lib/os-release' });
    assert.is(root.list('/usr/share/locale-lookalike').length, 200);
    assert.is(boot.list('/overlays').length, 7);
    assert.is(boot.list('/config.txt')[0].name, 'config.txt');
  } finally {
    io.close();
  }
});

test('IMAGE:PART:/path parsing', () => {
  assert.equal(parsePartPath('a.img:1:/config.txt'), { image: 'a.img', part: 1, path: '/config.txt' });
  assert.equal(parsePartPath('/x/c:d.img:2'), { image: '/x/c:d.img', part: 2, path: '/' });
  assert.equal(parsePartPath('a.img:2:/'), { image: 'a.img', part: 2, path: '/' });
  assert.throws(() => parsePartPath('a.img:/etc'), /is not IMAGE:PART:\/path/);
  assert.throws(() => parsePartPath('a.img:0:/'), /start at 1/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
