// Benchmark: export the ext4 root of the realistic image (~1.4 GiB used) to a tar with lib/netboot (our reader,
// no mounts) against `debugfs -R 'rdump / DIR'` of the same partition, timed in the same run with the image in the
// page cache. Also the directory export. Prints the ratio (target: ours ≥ 0.8× debugfs' speed, i.e. time ≤ 1.25×)
// and peak RSS. Usage: npx tsx bench/netboot.ts
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realisticImage } from './lib/realistic-image.ts';
import { FileIO, SliceIO } from '../lib/image/io.ts';
import { Ext4Fs } from '../lib/image/ext4/index.ts';
import { exportTar, exportDir } from '../lib/netboot/export-root.ts';

const here = dirname(fileURLToPath(import.meta.url));
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const now = (): number => Number(process.hrtime.bigint()) / 1e9;
const fmt = (s: number): string => `${s.toFixed(2)}s`;

const t0 = now();
const ri = await realisticImage();
console.log(`image: ${ri.img} (made or found in ${fmt(now() - t0)})`);
mkdirSync(join(here, '.tmp'), { recursive: true });
const dir = mkdtempSync(join(here, '.tmp', 'netboot-'));
try {
  execFileSync('sh', ['-c', `cat "${ri.img}" > /dev/null`]);
  // debugfs reads the partition inside the disk image through its io_options syntax `FILE?offset=BYTES`.
  const part = `${ri.img}?offset=${ri.rootStart}`;
  const io = FileIO.open(ri.img);
  const fs = Ext4Fs.open(new SliceIO(io, ri.rootStart, ri.rootSize, 'root'));
  const used = fs.usedBytes();
  console.log(`root: ${(used / 2 ** 30).toFixed(2)} GiB used`);

  const td = now();
  const rd = join(dir, 'rdump');
  mkdirSync(rd);
  execFileSync('debugfs', ['-R', `rdump / ${rd}`, part], { env, stdio: 'ignore' });
  const debugfsSec = now() - td;
  rmSync(rd, { recursive: true });

  const tt = now();
  const res = await exportTar(fs, join(dir, 'root.tar'));
  const tarSec = now() - tt;
  const tarSize = statSync(join(dir, 'root.tar')).size;
  rmSync(join(dir, 'root.tar'));

  const tdir = now();
  await exportDir(fs, join(dir, 'rootdir'));
  const dirSec = now() - tdir;
  rmSync(join(dir, 'rootdir'), { recursive: true });
  io.close();

  console.log(`debugfs rdump:     ${fmt(debugfsSec)}`);
  console.log(`pi-image tar:      ${fmt(tarSec)}  (${res.files} files, ${(tarSize / 2 ** 30).toFixed(2)} GiB tar)  speed ${(debugfsSec / tarSec).toFixed(2)}× debugfs (target ≥ 0.8×)`);
  console.log(`pi-image dir:      ${fmt(dirSec)}  speed ${(debugfsSec / dirSec).toFixed(2)}× debugfs`);
  console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
