// The inspect / ls / cat commands run as child processes (`node bin/pi-image.js …`): human and --json output, and
// corrupt inputs (truncated image, bad MBR signature, overlapping partitions, FAT chain loop, ext4 bad magic) →
// one error line naming the file and the fault, exit code 1, a stack trace only with --verbose.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, openSync, readFileSync, writeSync, closeSync, readSync, rmSync, truncateSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeUbuntuLookalike, tempDir, type Lookalike } from '../helpers/lookalike.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = tempDir('pi-image-h6-cli-');
let l: Lookalike;

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string; raw: Buffer } {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', CI: '1' };
  delete env.FORCE_COLOR; // with NO_COLOR, node would print a warning on stderr
  const r = spawnSync(process.execPath, [join(root, 'bin/pi-image.js'), ...args], { cwd: root, env, timeout: 60_000, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), raw: r.stdout };
}

function patch(file: string, offset: number, bytes: number[] | Buffer): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from(bytes), 0, bytes.length, offset);
  closeSync(fd);
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(length);
  readSync(fd, b, 0, length, offset);
  closeSync(fd);
  return b;
}

/** A copy of the lookalike to damage. */
function copy(name: string): string {
  const p = join(dir, name);
  copyFileSync(l.img, p);
  return p;
}

/** The error contract: the first stderr line names the file and the fault; at most a hint line follows; no stack. */
function assertOneLineError(r: ReturnType<typeof cli>, file: string, fault: RegExp): void {
  assert.is(r.code, 1, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.ok(lines[0].startsWith('pi-image: '), lines[0]);
  assert.ok(lines[0].includes(file), `names the file: ${lines[0]}`);
  assert.match(lines[0], fault);
  assert.ok(lines.length === 1 || (lines.length === 2 && lines[1].startsWith('  ') && !/^\s+at /.test(lines[1])), `one line (+hint): ${r.stderr}`);
  assert.is(r.stdout, '');
}

test.before(async () => {
  l = await makeUbuntuLookalike(join(dir, 'base'), { bootMiB: 40, rootMiB: 32, bulkBytes: 256 * 1024 });
});

test('inspect: human output names the kernel, nobtcmd.txt and its cmdline, not the stray cmdline.txt', () => {
  const r = cli('inspect', l.img);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /pi4 boots: uboot_rpi_4\.bin/);
  assert.match(r.stdout, /cmdline \(nobtcmd\.txt\): net\.ifnames=0 .*root=LABEL=writable/);
  assert.not.match(r.stdout, /mmcblk0p2/);
  assert.match(r.stdout, /not used: btcmd\.txt, cmdline\.txt/);
  assert.match(r.stdout, /os: Ubuntu 19\.10/);
  assert.match(r.stdout, /fstab: LABEL=writable \/ ext4/);
  assert.match(r.stdout, /vfat \(FAT32\) "system-boot"/);
});

test('inspect --json: one result object with the report shape', () => {
  const r = cli('inspect', l.img, '--json');
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1, 'one JSON line');
  const j = JSON.parse(lines[0]);
  assert.is(j.event, 'result');
  assert.is(j.image, l.img);
  assert.is(j.table, 'mbr');
  assert.is(j.diskSignature, l.diskIdHex);
  assert.is(j.partitions.length, 2);
  const [p1, p2] = j.partitions;
  for (const k of ['number', 'type', 'typeHex', 'typeName', 'bootable', 'startLba', 'sectors', 'start', 'size', 'partuuid', 'filesystem', 'label', 'fsSize', 'usedBytes']) {
    assert.ok(k in p1, `p1.${k}`);
    assert.ok(k in p2, `p2.${k}`);
  }
  assert.is(p1.piBoot.cmdlineFile, 'nobtcmd.txt');
  assert.is(p1.piBoot.cmdline, readFileSync(join(l.bootTree, 'nobtcmd.txt'), 'utf8').trim());
  assert.is(p1.piBoot.seed.present, true);
  assert.is(p2.root.prettyName, 'Ubuntu 19.10');
  assert.is(p2.root.fstab.length, 2);
});

test('ls and cat on FAT and ext4; cat streams binary files exactly', () => {
  const a = cli('ls', `${l.img}:1:/`);
  assert.is(a.code, 0, a.stderr);
  assert.match(a.stdout, / nobtcmd\.txt\n/);
  assert.match(a.stdout, / overlays\/\n/);
  const b = cli('ls', `${l.img}:2:/etc`);
  assert.match(b.stdout, /os-release -> \.\.\/usr\/lib\/os-release/);
  assert.match(b.stdout, /^-rw-r--r--\s+0\s+0\s+110 2019-10-17 12:00  fstab$/m);
  const c = cli('cat', `${l.img}:1:/vmlinuz`);
  assert.is(c.code, 0, c.stderr);
  assert.ok(c.raw.equals(readFileSync(join(l.bootTree, 'vmlinuz'))));
  const d = cli('cat', `${l.img}:2:/etc/os-release`);
  assert.is(d.stdout, readFileSync(join(l.rootTree, 'usr/lib/os-release'), 'utf8'));
  const e = cli('cat', `${l.img}:1:/CONFIG.TXT`, '--json');
  const j = JSON.parse(e.stdout);
  assert.equal({ enc: j.encoding, size: j.size }, { enc: 'utf8', size: readFileSync(join(l.bootTree, 'config.txt')).length });
  const f = cli('ls', `${l.img}:2:/etc`, '--json');
  assert.ok(JSON.parse(f.stdout).entries.some((x: { name: string; type: string }) => x.name === 'fstab' && x.type === 'file'));
});

test('ls/cat errors: missing path, missing partition, bad spec → one line, exit 1/2', () => {
  assertOneLineError(cli('cat', `${l.img}:2:/etc/nope`), l.img, /nope/);
  assertOneLineError(cli('ls', `${l.img}:3:/`), l.img, /no partition 3/);
  assertOneLineError(cli('cat', `${l.img}:1:/overlays`), l.img, /not a regular file/);
  const bad = cli('ls', `${l.img}/etc`);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /is not IMAGE:PART:\/path/);
});

test('truncated image: partition 2 goes beyond the end', () => {
  const p = copy('truncated.img');
  truncateSync(p, l.root.offset + 4096);
  assertOneLineError(cli('inspect', p), p, /partition 2 .*beyond the end/);
  const tiny = copy('tiny.img');
  truncateSync(tiny, 300);
  assertOneLineError(cli('inspect', tiny), tiny, /shorter than one 512-byte sector/);
});

test('bad MBR signature', () => {
  const p = copy('badsig.img');
  patch(p, 510, [0x00, 0x00]);
  assertOneLineError(cli('inspect', p), p, /0x55AA/);
});

test('overlapping partitions', () => {
  const p = copy('overlap.img');
  // Partition 2's start LBA (entry 2 at 446+16, LBA at +8) moved inside partition 1.
  const e2 = 446 + 16 + 8;
  const b = Buffer.alloc(4);
  b.writeUInt32LE(l.boot.startLba + 100);
  patch(p, e2, b);
  assertOneLineError(cli('inspect', p), p, /partitions 1 and 2 overlap/);
});

test('FAT chain loop in config.txt: a typed error, no hang', () => {
  const p = copy('fatloop.img');
  const bs = readAt(p, l.boot.offset, 512);
  const bps = bs.readUInt16LE(11);
  const reserved = bs.readUInt16LE(14);
  const fats = bs[16];
  const fatSectors = bs.readUInt32LE(36);
  // config.txt's first cluster, as mtools reports it ("::/config.txt <438-440>").
  const chain = execFileSync('mshowfat', ['-i', `${p}@@${l.boot.offset}`, '::/config.txt'], { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  const first = Number(/<(\d+)/.exec(chain)?.[1] ?? 0);
  assert.ok(first >= 2, 'found config.txt');
  // Make its first cluster point to itself, in both FAT copies.
  for (let f = 0; f < fats; f++) {
    const at = l.boot.offset + (reserved + f * fatSectors) * bps + first * 4;
    const v = Buffer.alloc(4);
    v.writeUInt32LE(first);
    patch(p, at, v);
  }
  const start = Date.now();
  const r = cli('inspect', p);
  assert.ok(Date.now() - start < 30_000);
  assertOneLineError(r, p, /loop|cycle|chain/i);
  const c = cli('cat', `${p}:1:/config.txt`);
  assertOneLineError(c, p, /loop|cycle|chain/i);
});

test('ext4 bad magic → one line; --verbose adds the stack trace', () => {
  const p = copy('badmagic.img');
  patch(p, l.root.offset + 1080, [0, 0]);
  assertOneLineError(cli('inspect', p), p, /ext2\/3\/4|magic/);
  assertOneLineError(cli('ls', `${p}:2:/`), p, /magic/);
  const v = cli('inspect', p, '--verbose');
  assert.is(v.code, 1);
  assert.match(v.stderr, /\n\s+at /, 'stack with --verbose');
  const j = cli('inspect', p, '--json');
  const e = JSON.parse(j.stdout.trim().split('\n').pop()!);
  assert.equal({ event: e.event, code: e.code }, { event: 'error', code: 'CORRUPT' });
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
