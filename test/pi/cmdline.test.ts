// editCmdline: root= replaced, rootwait ensured, flags added once, quirks merged, everything else kept in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { editCmdline, splitCmdline, cmdlineValue, K8S_CGROUP_ARGS, usbQuirk, usbQuirksArg } from '../../lib/pi/index.ts';
import { FIXTURE_DIR } from '../helpers/lookalike.ts';

const nobtcmd = readFileSync(join(FIXTURE_DIR, 'system-boot', 'nobtcmd.txt'), 'latin1');

test('19.10.1 nobtcmd.txt → root on the SSD by PARTUUID, quirks and cgroups; the rest unchanged and in order', () => {
  const out = editCmdline(nobtcmd, {
    root: 'PARTUUID=2a7b5e1c-02',
    rootfstype: 'ext4',
    add: [usbQuirksArg(['asm1153'])!, ...K8S_CGROUP_ARGS],
  });
  assert.is(
    out,
    'net.ifnames=0 dwc_otg.lpm_enable=0 console=ttyAMA0,115200 console=tty1 root=PARTUUID=2a7b5e1c-02 rootfstype=ext4 elevator=deadline rootwait usb-storage.quirks=174c:55aa:u cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n',
  );
  // Idempotent.
  assert.is(editCmdline(out, { root: 'PARTUUID=2a7b5e1c-02', add: [usbQuirksArg(['asm1153'])!, ...K8S_CGROUP_ARGS] }), out);
});

test('trailing newline style kept: none, LF, CRLF; only the first line is the command line', () => {
  assert.is(editCmdline('console=tty1 root=/dev/mmcblk0p2', { root: '/dev/sda2' }), 'console=tty1 root=/dev/sda2 rootwait');
  assert.is(editCmdline('root=/dev/mmcblk0p2 rootwait\r\n', { root: '/dev/sda2' }), 'root=/dev/sda2 rootwait\r\n');
  assert.is(editCmdline('a b\nignored\n', {}), 'a b rootwait\n');
});

test('rootwait is added right after root=/rootfstype when missing; root= appended when absent', () => {
  assert.is(editCmdline('console=tty1 root=/dev/mmcblk0p2 rootfstype=ext4 quiet\n', {}), 'console=tty1 root=/dev/mmcblk0p2 rootfstype=ext4 rootwait quiet\n');
  assert.is(editCmdline('console=tty1\n', { root: 'PARTUUID=00000001-02' }), 'console=tty1 root=PARTUUID=00000001-02 rootwait\n');
});

test('set replaces in place and drops duplicates; null removes; remove by key or exact token', () => {
  assert.is(editCmdline('a=1 b=2 a=3 c\n', { set: { a: 'x' } }), 'a=x b=2 c rootwait\n');
  assert.is(editCmdline('a=1 b=2 c rootwait\n', { set: { b: null } }), 'a=1 c rootwait\n');
  assert.is(editCmdline('console=ttyAMA0,115200 console=tty1 quiet splash rootwait\n', { remove: ['splash', 'console=tty1'] }), 'console=ttyAMA0,115200 quiet rootwait\n');
});

test('usb-storage.quirks merged by VID:PID with an existing list', () => {
  const out = editCmdline('root=/dev/sda2 usb-storage.quirks=152d:0578:u,174c:55aa:k rootwait\n', { add: ['usb-storage.quirks=174c:55aa:u,152d:0583:u'] });
  assert.is(cmdlineValue(out, 'usb-storage.quirks'), '152d:0578:u,174c:55aa:u,152d:0583:u');
  assert.is(splitCmdline(out).filter((a) => a.startsWith('usb-storage.quirks')).length, 1);
});

test('quoted arguments with spaces survive', () => {
  assert.equal(splitCmdline('a "b c" dyndbg="file x.c +p"  d'), ['a', '"b c"', 'dyndbg="file x.c +p"', 'd']);
  assert.is(editCmdline('dyndbg="file x.c +p" root=/dev/x rootwait', { root: '/dev/y' }), 'dyndbg="file x.c +p" root=/dev/y rootwait');
});

test('USB quirk table: names, raw ids, unknown names are a clear error', () => {
  assert.is(usbQuirk('ASM1153E'), '174c:55aa:u');
  assert.is(usbQuirk('jms578'), '152d:0578:u');
  assert.is(usbQuirk('152D:A583'), '152d:a583:u');
  assert.is(usbQuirk('174c:55aa:k'), '174c:55aa:k');
  assert.is(usbQuirksArg(['lacie', 'asm1153', 'jms583']), 'usb-storage.quirks=174c:55aa:u,152d:0583:u');
  assert.is(usbQuirksArg([]), undefined);
  assert.throws(() => usbQuirk('no-such-bridge'), /unknown USB adapter "no-such-bridge"/);
});

test.run();
