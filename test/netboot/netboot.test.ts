// The netboot pipeline on an Ubuntu 19.10.1 lookalike (with a real gzip'd newc initrd): per-board TFTP trees with
// shared files hard-linked, the NFS cmdline in the file config.txt selects, vmlinux = gunzip(vmlinuz), the
// initrd + overlay (cpio -t lists the overlay; the original archive still lists), NFS roots as tar and as
// directory with the seed and NFS fstab, and a dnsmasq config that passes `dnsmasq --test`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync, readFileSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { makeUbuntuLookalike, type Lookalike } from '../helpers/lookalike.ts';
import { netboot, makeOverlay, alignPadding, OVERLAY_CONF, NOCLOUD_NETBOOT_CFG } from '../../lib/netboot/index.ts';
import { InputError } from '../../lib/errors.ts';
import { PATH_ENV, run, sha256 } from '../helpers/ext4-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-netboot-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

// A real initramfs: gzip'd newc cpio made by GNU cpio.
const initTree = join(dir, 'initramfs');
mkdirSync(join(initTree, 'scripts'), { recursive: true });
mkdirSync(join(initTree, 'conf/conf.d'), { recursive: true });
writeFileSync(join(initTree, 'init'), '#!/bin/sh\necho init\n');
writeFileSync(join(initTree, 'scripts/nfs'), '# nfs boot script\n');
writeFileSync(join(initTree, 'conf/initramfs.conf'), 'MODULES=most\n');
const origCpio = execFileSync('sh', ['-c', 'find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n'], { cwd: initTree });
const origList = ['.', 'conf', 'conf/conf.d', 'conf/initramfs.conf', 'init', 'scripts', 'scripts/nfs'];

let look: Lookalike;
const seed = (name: string): Record<string, string> => ({
  'user-data': `#cloud-config\nhostname: ${name}\n`,
  'meta-data': `instance-id: ${name}-1\n`,
  'network-config': 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
});
const nodes = [
  { name: 'node1', serial: '1a2b3c4d', mac: 'dc:a6:32:01:36:c2', seed: seed('node1'), extraCmdline: ['cgroup_enable=memory'] },
  { name: 'node2', serial: '0000beef', mac: 'DC-A6-32-01-36-C3', seed: seed('node2'), address: '192.168.1.22' },
];

test.before(async () => {
  look = await makeUbuntuLookalike(join(dir, 'look'), { extraBootFiles: { 'initrd.img': origCpio } });
});

test('TFTP trees, initrd overlay, tar NFS roots, server config', async () => {
  const tftp = join(dir, 'tftp');
  const nfs = join(dir, 'nfs');
  const res = await netboot({ image: look.img, server: '192.168.1.10', tftpRoot: tftp, nfsRoot: nfs, nodes, by: 'serial', format: 'tar' });
  const b1 = join(tftp, '1a2b3c4d');
  const b2 = join(tftp, '0000beef');
  for (const f of ['start4.elf', 'fixup4.dat', 'bcm2711-rpi-4-b.dtb', 'overlays/vc4-fkms-v3d.dtbo', 'config.txt', 'cmdline.txt', 'nobtcmd.txt', 'vmlinux', 'initrd.img']) {
    assert.ok(existsSync(join(b1, f)), `${f} in board dir`);
  }
  for (const f of ['user-data', 'meta-data', 'bootcode.bin', 'vmlinuz', 'uboot_rpi_4.bin']) assert.not.ok(existsSync(join(b1, f)), `${f} not served`);
  // Shared files are hard links; cmdlines are per node.
  for (const f of ['start4.elf', 'vmlinux', 'initrd.img', 'config.txt', 'overlays/dwc2.dtbo']) {
    assert.is(statSync(join(b1, f)).ino, statSync(join(b2, f)).ino, `${f} hard-linked`);
  }
  const c1 = readFileSync(join(b1, 'nobtcmd.txt'), 'utf8');
  assert.is(readFileSync(join(b1, 'cmdline.txt'), 'utf8'), c1);
  assert.ok(c1.includes(`root=/dev/nfs nfsroot=192.168.1.10:${join(nfs, 'node1')},vers=3 rw ip=dhcp rootwait`), c1);
  for (const t of ['rw', 'ip=dhcp', 'rootwait', 'cgroup_enable=memory', 'console=ttyAMA0,115200']) assert.ok(c1.split(/\s+/).includes(t), `${t} in ${c1}`);
  assert.not.match(c1, /rootfstype|LABEL=writable/);
  assert.match(readFileSync(join(b2, 'cmdline.txt'), 'utf8'), /nfsroot=192\.168\.1\.10:\S+\/node2,vers=3/);
  assert.not.match(readFileSync(join(b2, 'cmdline.txt'), 'utf8'), /cgroup_enable/);
  const configs = readFileSync(join(b1, 'config.txt'), 'utf8') + readFileSync(join(b1, 'usercfg.txt'), 'utf8');
  assert.match(configs, /kernel=vmlinux/);
  assert.match(configs, /initramfs initrd\.img followkernel/);

  // vmlinux is the decompressed vmlinuz.
  const vmlinuz = execFileSync('mtype', ['-i', `${look.img}@@${look.boot.offset}`, '::vmlinuz'], { env: PATH_ENV, maxBuffer: 64 << 20 });
  assert.is(sha256(readFileSync(join(b1, 'vmlinux'))), sha256(gunzipSync(vmlinuz)));

  // initrd = original bytes, zero padding to 4, then our newc overlay.
  const initrd = readFileSync(join(b1, 'initrd.img'));
  const pad = alignPadding(origCpio.length);
  assert.ok(initrd.subarray(0, origCpio.length).equals(origCpio), 'original initrd kept byte for byte');
  assert.ok(initrd.subarray(origCpio.length, origCpio.length + pad).every((b) => b === 0));
  const overlay = initrd.subarray(origCpio.length + pad);
  assert.is((origCpio.length + pad) % 4, 0);
  assert.is(overlay.subarray(0, 6).toString(), '070701');
  const listing = spawnSync('cpio', ['-t', '--quiet'], { input: overlay, encoding: 'utf8' });
  assert.is(listing.status, 0, listing.stderr);
  assert.equal(listing.stdout.trim().split('\n'), ['conf', 'conf/conf.d', OVERLAY_CONF]);
  const xo = join(dir, 'x-overlay');
  mkdirSync(xo);
  spawnSync('cpio', ['-id', '--quiet'], { input: overlay, cwd: xo });
  assert.match(readFileSync(join(xo, OVERLAY_CONF), 'utf8'), /^BOOT=nfs$/m);
  // The concatenated file still yields the original archive (gzip stops at its end; it warns of the rest).
  const orig = spawnSync('sh', ['-c', 'gzip -dc 2>/dev/null | cpio -t --quiet'], { input: initrd, encoding: 'utf8' });
  assert.equal(orig.stdout.trim().split('\n'), origList);

  // NFS roots as tars: seed in /boot/firmware, NFS fstab, NoCloud pointed at the seed.
  for (const n of nodes) {
    const tarFile = join(nfs, `${n.name}.tar`);
    const list = run('tar', ['-tvf', tarFile, '--numeric-owner']);
    assert.match(list, /^-rw------- 0\/0 .* \.\/boot\/firmware\/user-data$/m);
    assert.match(list, /^-rw-r--r-- 0\/0 .* \.\/boot\/firmware\/meta-data$/m);
    const x = join(dir, `x-${n.name}`);
    mkdirSync(x);
    run('tar', ['-xpf', tarFile, '-C', x, '--numeric-owner']);
    assert.is(readFileSync(join(x, 'boot/firmware/user-data'), 'utf8'), n.seed['user-data']);
    assert.is(readFileSync(join(x, 'boot/firmware/meta-data'), 'utf8'), n.seed['meta-data']);
    const fstab = readFileSync(join(x, 'etc/fstab'), 'utf8');
    assert.match(fstab, /^# pi-image netboot .*LABEL=writable\s+\/\s+ext4/m);
    assert.match(fstab, /^# pi-image netboot .*LABEL=system-boot\s+\/boot\/firmware/m);
    assert.is(readFileSync(join(x, 'etc/cloud/cloud.cfg.d/99-fake_cloud.cfg'), 'utf8'), NOCLOUD_NETBOOT_CFG);
    assert.ok(existsSync(join(x, 'usr/lib/os-release')));
    rmSync(x, { recursive: true });
  }
  assert.is(res.nodes[0].tarFile, join(nfs, 'node1.tar'));

  // Server side.
  const conf = join(dir, 'dnsmasq.conf');
  writeFileSync(conf, res.dnsmasqConf);
  const t = spawnSync('dnsmasq', ['--test', '-C', conf], { env: PATH_ENV, encoding: 'utf8' });
  assert.is(t.status, 0, t.stderr);
  assert.match(t.stderr, /syntax check OK/);
  assert.match(res.dnsmasqConf, /^dhcp-range=192\.168\.1\.0,proxy/m);
  assert.match(res.dnsmasqConf, /^pxe-service=0,"Raspberry Pi Boot"$/m);
  assert.match(res.dnsmasqConf, new RegExp(`^tftp-root=${tftp}$`, 'm'));
  assert.equal(res.exports, [
    `${join(nfs, 'node1')} 192.168.1.0/24(rw,sync,no_subtree_check,no_root_squash)`,
    `${join(nfs, 'node2')} 192.168.1.22(rw,sync,no_subtree_check,no_root_squash)`,
  ]);
  assert.equal(res.eeprom, ['[all]', 'BOOT_ORDER=0xf21', 'TFTP_PREFIX=0', 'TFTP_IP=192.168.1.10']);
  rmSync(tftp, { recursive: true });
  rmSync(nfs, { recursive: true });
});

test('by MAC with directory NFS roots', async () => {
  const tftp = join(dir, 'tftp-mac');
  const nfs = join(dir, 'nfs-mac');
  const res = await netboot({ image: look.img, server: '10.0.0.1', tftpRoot: tftp, nfsRoot: nfs, nodes, by: 'mac', format: 'dir', prefix: 16 });
  assert.ok(existsSync(join(tftp, 'dc-a6-32-01-36-c2', 'vmlinux')));
  assert.ok(existsSync(join(tftp, 'dc-a6-32-01-36-c3', 'vmlinux')));
  const ud = statSync(join(nfs, 'node2/boot/firmware/user-data'));
  assert.is(ud.mode & 0o777, 0o600);
  assert.match(readFileSync(join(nfs, 'node2/etc/fstab'), 'utf8'), /^# pi-image netboot/m);
  assert.match(res.dnsmasqConf, /^dhcp-range=10\.0\.0\.0,proxy,255\.255\.0\.0$/m);
  assert.equal(res.eeprom[2], 'TFTP_PREFIX=2');
});

async function rejects(fn: () => Promise<unknown>, check: RegExp | ((e: unknown) => boolean)): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (check instanceof RegExp) assert.match((e as Error).message, check);
    else assert.ok(check(e), String(e));
    return;
  }
  assert.unreachable('expected a rejection');
}

test('bad inputs: non-ASCII overlay names, bad serials, missing seed files', async () => {
  await rejects(() => makeOverlay([{ name: 'conf/café', data: 'x' }], new Date(0)), (e: unknown) => e instanceof InputError && /not plain ASCII/.test((e as Error).message));
  const base = { image: look.img, server: '192.168.1.10', tftpRoot: join(dir, 't'), nfsRoot: join(dir, 'n') };
  await rejects(() => netboot({ ...base, nodes: [{ name: 'a', serial: 'xyz', seed: seed('a') }] }), /serial "xyz" is not 8 hex digits/);
  await rejects(() => netboot({ ...base, nodes: [{ name: 'a', serial: '12345678', seed: { 'user-data': 'x' } }] }), /needs user-data and meta-data/);
  await rejects(() => netboot({ ...base, server: '300.1.1.1', nodes }), /not an IPv4 address/);
  await rejects(
    () => netboot({ ...base, nodes, overlayFiles: [{ name: 'etc/ünï', data: 'x' }] }),
    (e: unknown) => e instanceof InputError,
  );
});

test('pi-image netboot: the kernel command line carries the build plan\'s arguments (quirks, cgroups, swapaccount, kernel.cmdline)', () => {
  const profile = join(dir, 'netboot-profile.yaml');
  writeFileSync(profile, [
    'apiVersion: pi-image/v1', 'cluster: {name: nb}', 'glusterfs: {enabled: false}',
    'kubernetes: {calico: {enabled: false}, metallb: {enabled: false}, ingressNginx: {enabled: false}}',
    'kernel: {cmdline: [quiet, "loglevel=3"]}', 'ssd: {quirks: ["152d:0578:u"]}',
    'nodes: [{name: n1, role: master, address: 10.0.0.11/24, serial: 1a2b3c4d}]', '',
  ].join('\n'));
  const loader = new URL('../../node_modules/tsx/dist/esm/index.mjs', import.meta.url).href;
  const cli = new URL('../../bin/pi-image.ts', import.meta.url).pathname;
  const r = spawnSync(process.execPath, ['--import', loader, cli, 'netboot', 'n1', '--profile', profile, '--secrets', join(dir, 'nb-secrets'),
    '--image', look.img, '--server', '10.0.0.1', '--tftp-root', join(dir, 'cli-tftp'), '--nfs-root', join(dir, 'cli-nfs'), '--format', 'tar', '--json'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr + r.stdout);
  const result = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'result');
  const cmdline: string = result.nodes[0].cmdline;
  for (const w of ['usb-storage.quirks=152d:0578:u', 'cgroup_enable=cpuset', 'cgroup_enable=memory', 'cgroup_memory=1', 'swapaccount=1', 'quiet', 'loglevel=3', 'root=/dev/nfs']) {
    assert.ok(cmdline.split(' ').includes(w), `${w} in ${cmdline}`);
  }
  assert.is(readFileSync(join(dir, 'cli-tftp', '1a2b3c4d', 'cmdline.txt'), 'utf8').trim(), cmdline);
});

test.run();
