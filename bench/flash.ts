// Benchmark: flash the realistic 3 GiB image (~1.4 GiB used) to a file with verify, against `dd bs=4M conv=fsync`
// (whole image, no verify) and `bmaptool copy` (mapped blocks, checksums while reading), timed in the same run.
// All three write a fresh file on the same filesystem, with the image already in the page cache. Prints ratios
// (targets: ≤ 0.5× dd, ≤ 1.0× bmaptool) and peak RSS. Usage: npx tsx bench/flash.ts [--runs N]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realisticImage } from './lib/realistic-image.ts';
import { createBmap } from '../lib/image/bmap.ts';
import { flash } from '../lib/flash/flash.ts';

const here = dirname(fileURLToPath(import.meta.url));
const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 1;
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const now = () => Number(process.hrtime.bigint()) / 1e9;
const fmt = (s: number) => `${s.toFixed(2)}s`;
const GiB = 1024 ** 3;

const t0 = now();
const { img } = await realisticImage();
console.log(`image: ${img} (${(statSync(img).size / GiB).toFixed(2)} GiB, made or found in ${fmt(now() - t0)})`);
const dir = mkdtempSync(join(here, '.tmp', 'flash-'));
try {
  execFileSync('sh', ['-c', `cat "${img}" > /dev/null`]); // warm the page cache for everyone
  const tb = now();
  const bmapPath = join(dir, 'realistic.img.bmap');
  writeFileSync(bmapPath, await createBmap(img));
  const bmapSeconds = now() - tb;
  const mapped = Number(/<MappedBlocksCount> (\d+)/.exec(execFileSync('cat', [bmapPath]).toString())![1]) * 4096;
  console.log(`bmap (scan + sha256 of the whole image, once): ${fmt(bmapSeconds)}; mapped ${(mapped / GiB).toFixed(2)} GiB`);

  const timeIt = async (fn: (target: string) => unknown | Promise<unknown>): Promise<number> => {
    let best = Infinity;
    for (let i = 0; i < runs; i++) {
      const target = join(dir, 'target.img');
      rmSync(target, { force: true });
      execFileSync('sync');
      const s = now();
      await fn(target);
      best = Math.min(best, now() - s);
      rmSync(target, { force: true });
    }
    return best;
  };
  const dd = await timeIt((t) => execFileSync('dd', [`if=${img}`, `of=${t}`, 'bs=4M', 'conv=fsync', 'status=none'], { env }));
  console.log(`dd bs=4M conv=fsync (no verify):          ${fmt(dd)}`);
  const bmaptool = await timeIt((t) => execFileSync('bmaptool', ['-q', 'copy', '--bmap', bmapPath, img, t], { env, stdio: ['ignore', 'ignore', 'inherit'] }));
  console.log(`bmaptool copy (checksums while reading):  ${fmt(bmaptool)}`);
  const ours = await timeIt((t) => flash({ image: img, target: t, bmap: bmapPath }));
  console.log(`pi-image flash --bmap, with verify:       ${fmt(ours)}`);
  const oursNoVerify = await timeIt((t) => flash({ image: img, target: t, bmap: bmapPath, verify: false }));
  console.log(`pi-image flash --bmap --no-verify:        ${fmt(oursNoVerify)}`);
  const onTheFly = await timeIt((t) => flash({ image: img, target: t, bmap: false }));
  console.log(`pi-image flash, map on the fly, verify:   ${fmt(onTheFly)}`);
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log('');
  console.log(`ratio flash+verify / dd:        ${(ours / dd).toFixed(2)}×  (target ≤ 0.5×)`);
  console.log(`ratio flash+verify / bmaptool:  ${(ours / bmaptool).toFixed(2)}×  (target ≤ 1.0×)`);
  console.log(`ratio on-the-fly map / dd:      ${(onTheFly / dd).toFixed(2)}×`);
  console.log(`peak RSS of this process (tsx + all flashes): ${rss.toFixed(0)} MiB (target ≤ 150 MB)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
