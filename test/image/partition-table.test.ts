// The one partition-table interface: MBR and GPT tables made by sfdisk read the same as sfdisk --json reports
// them; tables we write (both schemes) read back the same with sfdisk and pass sgdisk's verify.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO } from '../../lib/image/io.ts';
import { readTable, tableFromBytes, writeTable, type PartitionTable } from '../../lib/image/partition-table.ts';
import { CorruptImageError } from '../../lib/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-ptable-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const run = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { env, input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
interface SfPart { node: string; start: number; size: number; type: string; uuid?: string; name?: string; bootable?: boolean }
const sfjson = (img: string): { label: string; id: string; partitions: SfPart[] } => JSON.parse(run('sfdisk', ['--json', img])).partitiontable;

function image(name: string, mib: number): string {
  const p = join(dir, name);
  writeFileSync(p, '');
  truncateSync(p, mib << 20);
  return p;
}
const read = (img: string): PartitionTable => {
  const io = FileIO.open(img);
  try {
    return readTable(io);
  } finally {
    io.close();
  }
};

test('MBR and GPT made by sfdisk: the same partitions, ids and PARTUUIDs as sfdisk --json', () => {
  const d = image('dos.img', 16);
  run('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', d], 'label: dos\nlabel-id: 0x5452574f\nstart=2048, size=8192, type=c, bootable\nstart=10240, type=83\n');
  const g = image('gpt.img', 16);
  run('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', g], 'label: gpt\nlabel-id: 01234567-89AB-CDEF-0123-456789ABCDEF\nstart=2048, size=8192, type=U, name="esp"\nstart=10240, size=8192, type=L, name="root"\n');
  for (const img of [d, g]) {
    const t = read(img);
    const sf = sfjson(img);
    assert.is(t.scheme, sf.label === 'dos' ? 'mbr' : 'gpt');
    assert.is(t.diskId, sf.label === 'dos' ? sf.id.replace(/^0x/, '') : sf.id.toLowerCase());
    assert.equal(t.partitions.map((p) => [p.startLba, p.sectors]), sf.partitions.map((p) => [p.start, p.size]));
    if (sf.label === 'gpt') {
      assert.equal(t.partitions.map((p) => p.uuid), sf.partitions.map((p) => p.uuid!.toLowerCase()));
      assert.equal(t.partitions.map((p) => [p.type, p.name]), [[0xef, 'esp'], [0x83, 'root']]);
    } else {
      assert.equal(t.partitions.map((p) => p.uuid), ['5452574f-01', '5452574f-02']);
      assert.ok(t.partitions[0].bootable);
    }
    // tableFromBytes decodes the same from the disk's first 34 sectors (MBR + GPT header + entries): no I/O.
    const head = readFileSync(img).subarray(0, 34 * 512);
    assert.equal(tableFromBytes(head, { name: img, diskSize: 16 << 20 }), t);
  }
});

test('writeTable: an MBR and a GPT we write read back the same with sfdisk, and sgdisk finds no problem in the GPT', () => {
  const parts = [
    { index: 1, start: 2048 * 512, size: 4096 * 512, startLba: 2048, sectors: 4096, type: 0x0c, bootable: true, uuid: '', typeGuid: 'ebd0a0a2-b9e5-4433-87c0-68b6b72699c7', name: 'system-boot' },
    { index: 2, start: 6144 * 512, size: 8192 * 512, startLba: 6144, sectors: 8192, type: 0x83, bootable: false, uuid: '', typeGuid: '0fc63daf-8483-4772-8e79-3d69d8477de4', name: 'writable' },
  ];
  const m = image('w-dos.img', 16);
  const mt: PartitionTable = { scheme: 'mbr', diskId: 'deadbeef', diskSignature: 0xdeadbeef, sectorSize: 512, partitions: parts.map((p) => ({ ...p, typeGuid: undefined, name: undefined, uuid: `deadbeef-0${p.index}` })) };
  const io = FileIO.open(m, { write: true });
  writeTable(io, mt);
  io.close();
  const sm = sfjson(m);
  assert.is(sm.id, '0xdeadbeef');
  assert.equal(sm.partitions.map((p) => [p.start, p.size, p.type, !!p.bootable]), [[2048, 4096, 'c', true], [6144, 8192, '83', false]]);
  const back = read(m);
  assert.equal(back.partitions.map((p) => [p.startLba, p.sectors, p.type, p.uuid]), [[2048, 4096, 0x0c, 'deadbeef-01'], [6144, 8192, 0x83, 'deadbeef-02']]);

  const g = image('w-gpt.img', 16);
  const gt: PartitionTable = { scheme: 'gpt', diskId: '01234567-89ab-cdef-0123-456789abcdef', diskSignature: 0, sectorSize: 512, partitions: parts.map((p) => ({ ...p, bootable: false, uuid: `11111111-2222-3333-4444-00000000000${p.index}` })) };
  const gio = FileIO.open(g, { write: true });
  writeTable(gio, gt);
  gio.close();
  assert.match(run('sgdisk', ['-v', g]), /No problems found/);
  const sg = sfjson(g);
  assert.is(sg.label, 'gpt');
  assert.is(sg.id, '01234567-89AB-CDEF-0123-456789ABCDEF');
  assert.equal(sg.partitions.map((p) => [p.start, p.size, p.name, p.uuid]), [[2048, 4096, 'system-boot', '11111111-2222-3333-4444-000000000001'], [6144, 8192, 'writable', '11111111-2222-3333-4444-000000000002']]);
  assert.equal(read(g), gt);
});

test('a GPT whose entry array CRC is damaged: one error at the image offset of the array', () => {
  const g = image('bad.img', 8);
  run('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', g], 'label: gpt\nstart=2048, size=2048, type=L\n');
  const io = FileIO.open(g, { write: true });
  io.write(2 * 512 + 56, Buffer.from('x'));
  assert.throws(() => readTable(io), (e: unknown) => e instanceof CorruptImageError && e.offset === 1024 && /entry array CRC mismatch/.test(e.message));
  io.close();
});

test.run();
