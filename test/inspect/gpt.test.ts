// A GPT base image (the MBR lookalike's two partitions, byte for byte, in a GPT made by sfdisk) drops in where
// an MBR one goes:
// `inspect`, `ls` and `cat` read it through the one partition-table interface, and `build` makes the same node
// images from it as from the MBR lookalike with the same files (only the SD's bootable flag, which GPT lacks,
// differs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeUbuntuLookalike, tempDir, type Lookalike } from '../helpers/lookalike.ts';
import { build } from '../../lib/assemble/build.ts';
import { readTable } from '../../lib/image/partition-table.ts';
import { FileIO } from '../../lib/image/io.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = tempDir('pi-image-gpt-');
let dos: Lookalike;
/** The GPT twin of `dos`: its disk id, image, and where its partitions are (the same LBAs). */
let gpt: { img: string; diskIdHex: string; boot: Lookalike['boot']; root: Lookalike['root'] };
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string; raw: Buffer } {
  const e: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', CI: '1' };
  delete e.FORCE_COLOR;
  const r = spawnSync(process.execPath, [join(root, 'bin/pi-image.js'), ...args], { cwd: root, env: e, timeout: 120_000, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), raw: r.stdout };
}
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

test.before(async () => {
  const opts = { bootMiB: 40, rootMiB: 32, bulkBytes: 256 * 1024, variant: 'late2019' as const };
  dos = await makeUbuntuLookalike(join(dir, 'dos'), opts);
  // The same partitions in a GPT (1 MiB more at the end for the backup header and entries), their bytes copied.
  const img = join(dir, 'gpt.img');
  writeFileSync(img, '');
  truncateSync(img, dos.size + (1 << 20));
  const id = dos.diskIdHex;
  execFileSync('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', img], {
    env,
    input: [
      'label: gpt',
      `label-id: ${id}-0000-4000-8000-000000000000`,
      `start=${dos.boot.startLba}, size=${dos.boot.sectors}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid=${id}-0001-4000-8000-000000000001, name="system-boot"`,
      `start=${dos.root.startLba}, size=${dos.root.sectors}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=${id}-0002-4000-8000-000000000002, name="writable"`,
      '',
    ].join('\n'),
  });
  const from = openSync(dos.img, 'r');
  const to = openSync(img, 'r+');
  const buf = Buffer.alloc(1 << 20);
  for (const p of [dos.boot, dos.root]) {
    for (let off = p.offset; off < p.offset + p.size; off += buf.length) {
      const n = readSync(from, buf, 0, Math.min(buf.length, p.offset + p.size - off), off);
      writeSync(to, buf, 0, n, off);
    }
  }
  closeSync(from);
  closeSync(to);
  gpt = { img, diskIdHex: id, boot: dos.boot, root: dos.root };
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('the lookalike really is GPT (sfdisk says so) and readTable sees its two partitions', () => {
  const t = JSON.parse(execFileSync('sfdisk', ['--json', gpt.img], { env }).toString()).partitiontable;
  assert.is(t.label, 'gpt');
  const io = FileIO.open(gpt.img);
  const table = readTable(io);
  io.close();
  assert.is(table.scheme, 'gpt');
  assert.equal(table.partitions.map((p) => [p.index, p.startLba, p.sectors, p.type, p.name]), [
    [1, gpt.boot.startLba, gpt.boot.sectors, 0x0c, 'system-boot'],
    [2, gpt.root.startLba, gpt.root.sectors, 0x83, 'writable'],
  ]);
  assert.equal(table.partitions.map((p) => p.uuid), t.partitions.map((p: { uuid: string }) => p.uuid.toLowerCase()));
});

test('inspect: a GPT image shows its table, both filesystems, the Pi boot files and the root', () => {
  const r = cli('inspect', '--json', gpt.img);
  assert.is(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  assert.is(rep.table, 'gpt');
  assert.is(rep.diskSignature, `${gpt.diskIdHex}-0000-4000-8000-000000000000`);
  assert.equal(rep.partitions.map((p: { filesystem: string }) => p.filesystem), ['vfat', 'ext4']);
  assert.is(rep.partitions[0].typeName, 'Microsoft basic data');
  assert.is(rep.partitions[1].partuuid, `${gpt.diskIdHex}-0002-4000-8000-000000000002`);
  assert.is(rep.partitions[0].piBoot.cmdlineFile, 'nobtcmd.txt');
  assert.match(rep.partitions[1].root.prettyName, /Ubuntu/);
  const human = cli('inspect', gpt.img);
  assert.is(human.code, 0, human.stderr);
  assert.match(human.stdout.split('\n')[0], /, GPT, disk id /);
});

test('ls and cat read files from both partitions of a GPT image, the same bytes as from the MBR one', () => {
  const a = cli('ls', `${gpt.img}:1:/`);
  assert.is(a.code, 0, a.stderr);
  assert.match(a.stdout, /config\.txt/);
  assert.is(cli('ls', `${gpt.img}:2:/etc`).stdout, cli('ls', `${dos.img}:2:/etc`).stdout);
  const k = cli('cat', `${gpt.img}:1:/vmlinuz`);
  assert.is(k.code, 0, k.stderr);
  assert.ok(k.raw.equals(cli('cat', `${dos.img}:1:/vmlinuz`).raw), 'vmlinuz from GPT == from MBR');
  assert.is(cli('cat', `${gpt.img}:2:/etc/os-release`).stdout, cli('cat', `${dos.img}:2:/etc/os-release`).stdout);
});

test('build from a GPT base image: the same SSD images as from the MBR base, SD images but for the bootable flag', async () => {
  const common = { nodes: ['node1', 'node3'], cacheDir: join(dir, 'cache'), secretsDir: join(dir, 'secrets'), sourceDateEpoch: 1577836800, profile: join(root, 'profiles', 'yarpi4.yaml') };
  const fromDos = await build({ ...common, image: dos.img, outDir: join(dir, 'out-dos') });
  const fromGpt = await build({ ...common, image: gpt.img, outDir: join(dir, 'out-gpt') });
  for (const n of ['node1', 'node3']) {
    const ssd = (o: string) => join(o, n, 'ssd.img');
    assert.is(sha(ssd(fromGpt.outDir)), sha(ssd(fromDos.outDir)), `${n}/ssd.img`);
    const a = readFileSync(join(fromDos.outDir, n, 'sd.img'));
    const b = readFileSync(join(fromGpt.outDir, n, 'sd.img'));
    assert.is(a.length, b.length);
    assert.is(a[446], 0x80, 'the MBR base has its boot partition active');
    assert.is(b[446], 0x00, 'the GPT base had no active flag to copy');
    b[446] = 0x80;
    assert.ok(a.equals(b), `${n}/sd.img equal but for the bootable flag`);
    const sd = JSON.parse(execFileSync('sfdisk', ['--json', join(fromGpt.outDir, n, 'sd.img')], { env }).toString()).partitiontable;
    assert.is(sd.label, 'dos');
    assert.is(sd.partitions[0].type, 'c');
  }
});

test.run();
