// resolveBootConfig and editConfigForDirectBoot on the real Ubuntu 19.10.1 boot files (both variants, with the
// stray cmdline.txt) and on 20.04/22.04-style files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveBootConfig, editConfigForDirectBoot, BLOCK_BEGIN, type ReadText } from '../../lib/pi/index.ts';
import { FIXTURE_DIR } from '../helpers/lookalike.ts';

/** The boot files of a variant as a name → text map (late2019 overlays the October files). */
function bootFiles(variant: 'oct2019' | 'late2019', legacy = true): Record<string, string> {
  const files: Record<string, string> = {};
  const dirs = ['system-boot', ...(variant === 'late2019' ? ['system-boot-late2019'] : []), ...(legacy ? ['system-boot-legacy'] : [])];
  for (const d of dirs) for (const f of readdirSync(join(FIXTURE_DIR, d))) files[f] = readFileSync(join(FIXTURE_DIR, d, f), 'latin1');
  return files;
}
const reader = (files: Record<string, string>): ReadText => (n) => files[n];

for (const variant of ['oct2019', 'late2019'] as const) {
  test(`19.10.1 ${variant}: Pi 4 boots uboot_rpi_4.bin with nobtcmd.txt, not the stray cmdline.txt`, () => {
    const files = bootFiles(variant);
    assert.ok(files['cmdline.txt'], 'the stray cmdline.txt is present');
    const r = resolveBootConfig(reader(files));
    assert.is(r.kernel, 'uboot_rpi_4.bin');
    assert.is(r.cmdlineFile, 'nobtcmd.txt');
    assert.is(r.cmdline, files['nobtcmd.txt'].trim());
    assert.ok(r.cmdline.includes('root=LABEL=writable'));
    assert.not.ok(r.cmdline.includes('mmcblk0p2'));
    assert.is(r.arm64, true);
    assert.is(r.initramfs, undefined);
    assert.is(r.userConfigFile, 'usercfg.txt');
    assert.equal(r.filesRead, ['config.txt', 'syscfg.txt', 'nobtcfg.txt', 'usercfg.txt', 'nobtcmd.txt']);
    assert.equal(r.missing, []);
    assert.is(r.settings.max_framebuffers, '2');
    assert.is(r.settings.device_tree_address, '0x03000000');
  });

  test(`19.10.1 ${variant}: Pi 3 and Pi 2 get their own u-boot; Pi 3+ matches [pi3]`, () => {
    const files = bootFiles(variant);
    assert.is(resolveBootConfig(reader(files), 'pi3').kernel, 'uboot_rpi_3.bin');
    assert.is(resolveBootConfig(reader(files), 'pi3+').kernel, 'uboot_rpi_3.bin');
    assert.is(resolveBootConfig(reader(files), 'pi2').kernel, 'uboot_rpi_2.bin');
    assert.is(resolveBootConfig(reader(files), 'pi400').kernel, 'uboot_rpi_4.bin');
    assert.is(resolveBootConfig(reader(files), 'pi3').settings.max_framebuffers, undefined);
  });

  test(`19.10.1 ${variant}: direct-boot edit goes to usercfg.txt, keeps every other byte, resolves to vmlinux`, () => {
    const files = bootFiles(variant);
    const edits = editConfigForDirectBoot(reader(files), { kernel: 'vmlinux', initramfs: 'initrd.img' });
    assert.equal(Object.keys(edits), ['usercfg.txt']);
    const after = edits['usercfg.txt'];
    assert.ok(after.startsWith(files['usercfg.txt']), 'the original usercfg.txt is a byte-exact prefix');
    assert.ok(after.includes('\nkernel=vmlinux\ninitramfs initrd.img followkernel\n'));
    const merged = { ...files, ...edits };
    const r = resolveBootConfig(reader(merged));
    assert.is(r.kernel, 'vmlinux');
    assert.equal(r.initramfs, { file: 'initrd.img', address: 'followkernel' });
    assert.is(r.cmdlineFile, 'nobtcmd.txt');
    // Pi 3 is untouched apart from the [all]-scoped lines (it would also boot vmlinux: same firmware rules).
    assert.is(resolveBootConfig(reader(merged), 'pi3').kernel, 'vmlinux');
    // Idempotent: a second edit replaces our block instead of appending another.
    const again = editConfigForDirectBoot(reader(merged));
    assert.is(again['usercfg.txt'], after);
    assert.is(again['usercfg.txt'].split(BLOCK_BEGIN).length, 2);
  });
}

test('missing files: no config.txt → firmware defaults; missing include is reported, not fatal', () => {
  const r = resolveBootConfig(() => undefined);
  assert.is(r.kernel, 'kernel7l.img');
  assert.is(r.cmdlineFile, 'cmdline.txt');
  assert.is(r.cmdline, '');
  assert.is(r.cmdlineFound, false);
  assert.equal(r.missing, ['config.txt', 'cmdline.txt']);
  const r2 = resolveBootConfig(reader({ 'config.txt': 'arm_64bit=1\ninclude nope.txt\n', 'cmdline.txt': 'root=/dev/sda2 rootwait\nsecond line ignored\n' }));
  assert.is(r2.kernel, 'kernel8.img');
  assert.is(r2.kernelExplicit, false);
  assert.is(r2.cmdline, 'root=/dev/sda2 rootwait');
  assert.equal(r2.missing, ['nope.txt']);
});

test('sections: [none] disables until [all]; unknown hardware filters do not match; include follows the filter', () => {
  const files = {
    'config.txt': [
      'kernel=a.img',
      '[none]',
      'kernel=b.img',
      '[all]',
      '[pi3]',
      'include pi3.txt',
      '[pi4]',
      'include pi4.txt',
      '[EDID=VSC-TD2220]',
      'kernel=edid.img',
      '[all]',
      'cmdline=cmd-all.txt',
      '[gpio4=1]',
      'cmdline=gpio.txt',
      '[all]',
      '',
    ].join('\n'),
    'pi3.txt': 'kernel=pi3.img\n',
    'pi4.txt': '# pi4 only\nkernel=pi4.img\ninitramfs init4.gz 0x2000000\n',
    'cmd-all.txt': '  console=tty1 root=/dev/sda2  \n',
  };
  const r = resolveBootConfig(reader(files), 'pi4');
  assert.is(r.kernel, 'pi4.img');
  assert.equal(r.initramfs, { file: 'init4.gz', address: '0x2000000' });
  assert.is(r.cmdlineFile, 'cmd-all.txt');
  assert.is(r.cmdline, 'console=tty1 root=/dev/sda2');
  assert.equal(r.filesRead, ['config.txt', 'pi4.txt', 'cmd-all.txt']);
  assert.ok(r.warnings.some((w) => w.includes('EDID')));
  assert.is(resolveBootConfig(reader(files), 'pi3').kernel, 'pi3.img');
  assert.is(resolveBootConfig(reader(files), 'pi2').kernel, 'a.img');
});

test('include loops are cut and reported, never a hang', () => {
  const r = resolveBootConfig(reader({ 'config.txt': 'include a.txt\n', 'a.txt': 'kernel=x\ninclude b.txt\n', 'b.txt': 'include a.txt\n' }));
  assert.is(r.kernel, 'x');
  assert.ok(r.warnings.some((w) => w.includes('loop')));
});

test('20.04-style files: cmdline.txt boot; direct-boot edit via usercfg.txt', () => {
  const files: Record<string, string> = {
    'config.txt': '[pi4]\nkernel=uboot_rpi_4.bin\nmax_framebuffers=2\n\n[pi3]\nkernel=uboot_rpi_3.bin\n\n[all]\narm_64bit=1\ndevice_tree_address=0x03000000\nenable_uart=1\ncmdline=cmdline.txt\n\ninclude syscfg.txt\ninclude usercfg.txt\n',
    'syscfg.txt': 'enable_uart=1\ndtparam=audio=on\ncmdline=cmdline.txt\n',
    'usercfg.txt': '# user changes\n',
    'cmdline.txt': 'net.ifnames=0 dwc_otg.lpm_enable=0 console=serial0,115200 console=tty1 root=LABEL=writable rootfstype=ext4 elevator=deadline rootwait fixrtc\n',
  };
  const r = resolveBootConfig(reader(files));
  assert.is(r.kernel, 'uboot_rpi_4.bin');
  assert.is(r.cmdlineFile, 'cmdline.txt');
  assert.ok(r.cmdline.startsWith('net.ifnames=0'));
  const edits = editConfigForDirectBoot(reader(files));
  assert.equal(Object.keys(edits), ['usercfg.txt']);
  assert.is(resolveBootConfig(reader({ ...files, ...edits })).kernel, 'vmlinux');
});

test('22.04-style config.txt (no usercfg.txt, ends in [all]) gets a trailing [all] block; CRLF kept', () => {
  const config = '[all]\r\nkernel=vmlinuz\r\ncmdline=cmdline.txt\r\ninitramfs initrd.img followkernel\r\n\r\n[pi4]\r\nmax_framebuffers=2\r\n\r\n[cm4]\r\ndtoverlay=dwc2,dr_mode=host';
  const files = { 'config.txt': config, 'cmdline.txt': 'console=tty1 root=LABEL=writable rootwait\n' };
  const before = resolveBootConfig(reader(files));
  assert.is(before.kernel, 'vmlinuz');
  assert.is(before.userConfigFile, undefined);
  const edits = editConfigForDirectBoot(reader(files), { kernel: 'vmlinux' });
  assert.equal(Object.keys(edits), ['config.txt']);
  const out = edits['config.txt'];
  assert.ok(out.startsWith(config + '\r\n'), 'original bytes kept; the missing final newline added');
  assert.ok(out.includes('\r\n[all]\r\nkernel=vmlinux\r\n'));
  assert.not.ok(/[^\r]\n/.test(out), 'no bare LF introduced');
  const r = resolveBootConfig(reader({ ...files, ...edits }));
  assert.is(r.kernel, 'vmlinux');
  assert.equal(r.initramfs, { file: 'initrd.img', address: 'followkernel' });
});

test('usercfg.txt overridden by a later kernel= in config.txt → the edit moves to config.txt', () => {
  const files = {
    'config.txt': '[all]\narm_64bit=1\ninclude usercfg.txt\n[pi4]\nkernel=uboot_rpi_4.bin\n',
    'usercfg.txt': '',
    'cmdline.txt': 'root=/dev/mmcblk0p2\n',
  };
  const edits = editConfigForDirectBoot(reader(files));
  assert.equal(Object.keys(edits), ['config.txt']);
  assert.ok(edits['config.txt'].startsWith(files['config.txt']));
  assert.is(resolveBootConfig(reader({ ...files, ...edits })).kernel, 'vmlinux');
});

test('fixture files are present (copied from the real image)', () => {
  for (const f of ['config.txt', 'syscfg.txt', 'usercfg.txt', 'nobtcfg.txt', 'nobtcmd.txt']) assert.ok(existsSync(join(FIXTURE_DIR, 'system-boot', f)));
});

test.run();
