// Fault cases of `flash`, run as a user would: terminals of no size and of odd sizes (progress stays bounded and the
// flash completes), bad targets (a directory, a missing directory, too small, the image itself, a mounted or
// system disk), kill -9 and a full disk mid-write. Each checks the error contract of helpers.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scatteredImage, MiB } from '../helpers/scattered-image.ts';
import { attachLoop, mountedLoop } from '../helpers/loopdev.ts';
import { cli, cliKilled, assertClean, leftovers, mountTmpfs, tempDir, underPty, BIN } from './helpers.ts';

const dir = tempDir('pi-image-faults-flash-');
test.after(() => rmSync(dir, { recursive: true, force: true }));
const SIZE = 96 * MiB;
const img = join(dir, 'disk.img');
scatteredImage(img, SIZE, [{ start: MiB, length: 40 * MiB }, { start: 60 * MiB, length: 8 * MiB }], { mbr: true });

// ---- terminals --------------------------------------------------------------------------------------------

const CURSOR_UP = '\x1b[1A';
/** Progress texts as the terminal shows them: what is between control sequences and line ends. */
const texts = (b: Buffer): string[] =>
  b.toString('utf8').split(/\x1b\[[0-9;?]*[A-Za-z]|\r|\n/).filter((s) => /write|verify/.test(s));

for (const [cols, rows] of [[0, 0], [0, 24]] as const) {
  test(`flash under a terminal of ${cols} columns and ${rows} rows: plain lines, bounded output, completes`, () => {
    const target = join(dir, `pty-${cols}-${rows}.img`);
    const r = underPty(`${process.execPath} ${BIN} flash ${img} ${target} --yes`, { cols, rows, cwd: dir, timeout: 90_000 });
    assert.is(r.signal, null, `finished (output so far: ${r.bytes} bytes)`);
    assert.is(r.code, 0, r.output.toString().slice(-500));
    assert.ok(r.bytes < 16 * 1024, `terminal got ${r.bytes} bytes`);
    assert.not.ok(r.output.includes(CURSOR_UP), 'no cursor movement without a size');
    assert.match(r.output.toString(), /Flashed/);
    execFileSync('cmp', [img, target]);
  });
}

for (const [cols, rows] of [[12, 5], [40, 2], [300, 80]] as const) {
  test(`flash under a ${cols}x${rows} terminal: every progress frame fits one line, output bounded`, () => {
    const target = join(dir, `pty-${cols}.img`);
    const r = underPty(`${process.execPath} ${BIN} flash ${img} ${target} --yes`, { cols, rows, cwd: dir, timeout: 90_000 });
    assert.is(r.signal, null, `finished (output so far: ${r.bytes} bytes)`);
    assert.is(r.code, 0, r.output.toString().slice(-500));
    assert.ok(r.bytes < 512 * 1024, `terminal got ${r.bytes} bytes`);
    const frames = texts(r.output).filter((t) => !/Flashed|wrote/.test(t));
    for (const t of frames) assert.ok([...t].length < cols, `frame wider than ${cols} columns: ${JSON.stringify(t)}`);
    execFileSync('cmp', [img, target]);
  });
}

// ---- bad targets ------------------------------------------------------------------------------------------

test('flash to a directory: refused, exit 3, names it', () => {
  const d = join(dir, 'a-directory');
  mkdirSync(d, { recursive: true });
  assertClean(cli(dir, ['flash', img, d, '--yes']), { code: 3, names: [d], clean: [dir] });
});

test('flash to a file in a directory that does not exist: names the directory', () => {
  const t = join(dir, 'no', 'such', 'dir', 'out.img');
  assertClean(cli(dir, ['flash', img, t, '--yes']), { names: [join(dir, 'no')], absent: [t] });
});

test('flash of an image that does not exist: names it', () => {
  const missing = join(dir, 'missing.img');
  const t = join(dir, 'never.img');
  assertClean(cli(dir, ['flash', missing, t, '--yes']), { names: ['missing.img'], absent: [t] });
});

test('flash onto the image itself: refused, exit 3', () => {
  const copy = join(dir, 'self.img');
  writeFileSync(copy, readFileSync(img).subarray(0, 4 * MiB));
  const before = statSync(copy).mtimeMs;
  assertClean(cli(dir, ['flash', copy, copy, '--yes']), { code: 3, names: [copy] });
  assert.is(statSync(copy).mtimeMs, before, 'untouched');
});

test('flash to a block device too small for the image: refused, exit 3', () => {
  const small = join(dir, 'small-dev.img');
  execFileSync('truncate', ['-s', `${8 * MiB}`, small]);
  const loop = attachLoop(small);
  if (typeof loop === 'string') throw new Error(loop);
  try {
    assertClean(cli(dir, ['flash', img, loop.dev, '--yes']), { code: 3, names: [loop.dev, /small|hold|bytes|MB/] });
  } finally {
    loop.detach();
  }
});

test('flash to a mounted block device: refused, exit 3, says --unmount', () => {
  const backing = join(dir, 'mounted-dev.img');
  execFileSync('truncate', ['-s', `${128 * MiB}`, backing]);
  const loop = mountedLoop(backing);
  if (typeof loop === 'string') throw new Error(loop);
  try {
    const r = cli(dir, ['flash', img, loop.dev, '--yes']);
    assertClean(r, { code: 3, names: [loop.dev, /mounted/] });
    assert.match(r.stderr, /--unmount/);
  } finally {
    loop.detach();
  }
});

test('flash to the system disk (the one holding /): refused, exit 3, even with --force', () => {
  const src = execFileSync('findmnt', ['-no', 'SOURCE', '/'], { encoding: 'utf8' }).trim();
  let disk = src;
  try {
    const pk = execFileSync('lsblk', ['-no', 'PKNAME', src], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0];
    if (pk) disk = `/dev/${pk}`;
  } catch {
    /* an overlay or a virtual root: the device itself */
  }
  if (!disk.startsWith('/dev/')) {
    // In a container / is an overlay: the disk holding the image's own directory is the system's as well.
    disk = execFileSync('sh', ['-c', `lsblk -npo PKNAME "$(df --output=source ${dir} | tail -1)" 2>/dev/null | head -1`], { encoding: 'utf8' }).trim();
  }
  if (!disk.startsWith('/dev/')) throw new Error(`cannot find the disk holding / (findmnt says ${src})`);
  const r = cli(dir, ['flash', img, disk, '--yes', '--force']);
  assertClean(r, { code: 3, names: [disk] });
});

// ---- kill -9 and disk full --------------------------------------------------------------------------------

test('flash killed with SIGKILL mid-write: nothing under the target name (only a temporary one); the next flash completes and removes it', async () => {
  const target = join(dir, 'killed', 'out.img');
  mkdirSync(join(dir, 'killed'), { recursive: true });
  const k = await cliKilled(dir, ['flash', img, target, '--yes'], { when: /write: [1-9]/ });
  assert.ok(k.killed, `killed mid-way: ${k.stderr}`);
  assert.not.ok(existsSync(target), 'no half-written image under the final name');
  for (const l of leftovers(join(dir, 'killed'))) assert.match(l, /\/\.out\.img\.partial-\d+$/, 'only a temporary name');
  const r = cli(dir, ['flash', img, target, '--yes']);
  assert.is(r.code, 0, r.stderr);
  execFileSync('cmp', [img, target]);
  assert.equal(leftovers(join(dir, 'killed')).filter((l) => /partial/.test(l)), [], 'the killed run\'s temporary file is gone');
});

test('flash to a full disk: ENOSPC names the file and what to do; no partial file left', () => {
  const fs = mountTmpfs(16 * 1024);
  if (typeof fs === 'string') throw new Error(fs);
  try {
    const target = join(fs.dir, 'out.img');
    const r = cli(dir, ['flash', img, target, '--yes']);
    assertClean(r, { names: [/no space|full/i, fs.dir] , absent: [target], clean: [fs.dir] });
    assert.match(r.stderr, /free|space|smaller|another/i);
  } finally {
    fs.unmount();
  }
});

test('flash to a read-only file system: EROFS named, not a missing file', () => {
  const fs = mountTmpfs(1024, { readOnly: true });
  if (typeof fs === 'string') throw new Error(fs);
  try {
    const target = join(fs.dir, 'out.img');
    const r = cli(dir, ['flash', img, target, '--yes']);
    assertClean(r, { names: [/read-only/i, fs.dir], absent: [target] });
    assert.not.match(r.stderr, /ENOENT/);
  } finally {
    fs.unmount();
  }
});

test.run();
