// The direct-boot recipe applied to a real FAT32 boot partition (lookalike made by mkfs.vfat + mcopy): edit
// config/usercfg and the cmdline file config.txt really uses, decompress vmlinuz → vmlinux by streaming, then check
// with independent tools: mtype reads the edited files back, fsck.fat -n is clean, and our resolver, fed by mtools,
// says the Pi 4 boots vmlinux with initrd.img and the new cmdline.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FileIO } from '../../lib/image/io.ts';
import { readMbr, partitionIO } from '../../lib/image/mbr.ts';
import { FatFs } from '../../lib/image/fat/index.ts';
import { resolveBootConfig, editConfigForDirectBoot, editCmdline, extractKernel, usbQuirksArg, K8S_CGROUP_ARGS } from '../../lib/pi/index.ts';
import { makeUbuntuLookalike, tempDir } from '../helpers/lookalike.ts';

const dir = tempDir('pi-image-h6-direct-');
const env = { ...process.env, MTOOLS_SKIP_CHECK: '1', PATH: `${process.env.PATH}:/usr/sbin:/sbin` };

for (const variant of ['oct2019', 'late2019', 'focal', 'jammy'] as const) {
  test(`${variant}: edited boot partition boots vmlinux directly, checked with mtools and fsck.fat`, async () => {
    const l = await makeUbuntuLookalike(join(dir, variant), { variant, bootMiB: 36, rootMiB: 16, bulkBytes: 64 * 1024, kernelBytes: 2 << 20 });
    const io = FileIO.open(l.img, { write: true });
    const p1 = readMbr(io).partitions[0];
    const fat = FatFs.open(partitionIO(io, p1), { clock: () => new Date('2020-01-01T00:00:00Z') });
    const read = (n: string) => (fat.exists(n) ? fat.readFile(n).toString('latin1') : undefined);

    const chunks: Buffer[] = [];
    const k = await extractKernel(fat.readFileChunks('vmlinuz'), (c) => void chunks.push(Buffer.from(c)), 'vmlinuz');
    assert.is(k.kind, 'gzip');
    fat.writeFile('vmlinux', Buffer.concat(chunks));
    const edits = editConfigForDirectBoot(read, { kernel: 'vmlinux', initramfs: 'initrd.img' });
    for (const [f, text] of Object.entries(edits)) fat.writeFile(f, Buffer.from(text, 'latin1'));
    const cfg = resolveBootConfig(read);
    const root = `PARTUUID=${l.diskIdHex}-02`;
    const cmd = editCmdline(read(cfg.cmdlineFile)!, { root, add: [usbQuirksArg(['asm1153'])!, ...K8S_CGROUP_ARGS] });
    fat.writeFile(cfg.cmdlineFile, Buffer.from(cmd, 'latin1'));
    fat.flush();
    io.sync();
    io.close();

    // Independent readers.
    const at = `${l.img}@@${l.boot.offset}`;
    const mtype = (n: string): string | undefined => {
      try {
        return execFileSync('mtype', ['-i', at, `::/${n}`], { env, encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
      } catch {
        return undefined;
      }
    };
    const r = resolveBootConfig(mtype);
    assert.is(r.kernel, 'vmlinux');
    assert.equal(r.initramfs, { file: 'initrd.img', address: 'followkernel' });
    assert.is(r.cmdlineFile, l.expectedCmdlineFile);
    assert.ok(r.cmdline.includes(`root=${root}`));
    assert.ok(r.cmdline.includes('usb-storage.quirks=174c:55aa:u') && r.cmdline.includes('cgroup_memory=1') && r.cmdline.includes('rootwait'));
    for (const [f, text] of Object.entries(edits)) assert.is(mtype(f), text, `${f} reads back through mtools`);
    // The original lines of the edited file are all still there, in order, byte for byte.
    for (const f of Object.keys(edits)) assert.ok(edits[f].startsWith(readFileSync(join(l.bootTree, f), 'latin1').replace(/([^\n])$/, '$1\n')), f);
    // Every other boot file is untouched.
    for (const f of l.bootFiles.filter((n) => !(n in edits) && n !== l.expectedCmdlineFile && !n.startsWith('overlays/'))) {
      assert.is(mtype(f), readFileSync(join(l.bootTree, f), 'latin1'), f);
    }
    const vmlinux = execFileSync('mtype', ['-i', at, '::/vmlinux'], { env, maxBuffer: 64 << 20 });
    assert.is(createHash('sha256').update(vmlinux).digest('hex'), l.kernelSha256);
    const part = join(dir, `${variant}-p1.fat`);
    execFileSync('dd', [`if=${l.img}`, `of=${part}`, 'bs=512', `skip=${l.boot.startLba}`, `count=${l.boot.sectors}`, 'status=none']);
    execFileSync('fsck.fat', ['-n', part], { env, stdio: 'pipe' });
  });
}

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
