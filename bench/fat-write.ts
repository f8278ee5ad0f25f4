// In-process breakdown (no CLI command writes one file into a FAT; the CLI benches are flash, build, fetch and
// netboot). Benchmark: write a 4 KiB file into the FAT32 of a 4 GiB sparse volume made by mkfs.vfat, with our engine.
// Reports wall time and peak-RSS growth, against baselines timed in the same run: mtools' mcopy doing the same
// write (a separate process), and merely reading the whole FAT once (what a load-the-FAT design would pay).
// Usage: npx tsx bench/fat-write.ts
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO } from '../lib/image/io.ts';
import { FatFs } from '../lib/image/fat/index.ts';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, MTOOLS_SKIP_CHECK: '1' };
const dir = mkdtempSync(join(tmpdir(), 'pi-image-bench-fat-'));
const img = join(dir, 'vol.img');
const GiB = 1024 ** 3;

try {
  execFileSync('mkfs.vfat', ['-F', '32', '-s', '8', '-n', 'BENCH', '-C', img, String((4 * GiB) / 1024)], { env, stdio: 'ignore' });
  const data = Buffer.alloc(4096, 0x5a);
  const hr = () => Number(process.hrtime.bigint()) / 1e6;

  // Ours: open, write, flush (a fresh FatFs each round: nothing cached between rounds).
  const rssBefore = process.resourceUsage().maxRSS; // KiB, peak so far
  const ours: number[] = [];
  for (let i = 0; i < 5; i++) {
    const io = FileIO.open(img, { write: true });
    const t0 = hr();
    const fs = FatFs.open(io, { clock: () => new Date(Date.UTC(2020, 0, 1)) });
    fs.writeFile(`/file${i}.bin`, data);
    fs.flush();
    ours.push(hr() - t0);
    io.close();
  }
  const rssDelta = process.resourceUsage().maxRSS - rssBefore;

  // Baseline 1: mcopy of the same 4 KiB (process start included, as a user would pay it).
  const src = join(dir, 'src.bin');
  writeFileSync(src, data);
  const mc: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = hr();
    spawnSync('mcopy', ['-i', img, src, `::/m${i}.bin`], { env });
    mc.push(hr() - t0);
  }

  // Baseline 2: reading the whole FAT once.
  const io = FileIO.open(img);
  const g = FatFs.open(io).geometry;
  const t0 = hr();
  io.read(g.fatOffset, g.fatBytes);
  const fatRead = hr() - t0;
  io.close();

  const fsck = spawnSync('fsck.fat', ['-n', img], { env, encoding: 'utf8' });
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(`FAT32 volume: 4 GiB, cluster ${g.clusterSize} B, FAT ${(g.fatBytes / 1024 / 1024).toFixed(1)} MiB x ${g.numFats}`);
  console.log(`write 4 KiB (open+write+flush), ours:   median ${med(ours).toFixed(2)} ms  (runs: ${ours.map((x) => x.toFixed(1)).join(', ')})`);
  console.log(`peak RSS growth during our writes:       ${(rssDelta / 1024).toFixed(1)} MiB`);
  console.log(`baseline mcopy of the same file:         median ${med(mc).toFixed(2)} ms  -> ours is ${(med(mc) / med(ours)).toFixed(1)}x faster`);
  console.log(`baseline: reading the whole FAT once:    ${fatRead.toFixed(2)} ms  -> ${(fatRead / med(ours)).toFixed(1)}x our whole write`);
  console.log(`fsck.fat -n after the writes: exit ${fsck.status} (${fsck.stdout.trim().split('\n').pop()})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
