// Flash benchmark, the CLI as a user runs it, on the realistic 3 GiB image (~1.5 GiB mapped), to a fresh file on
// the bench's file system, image in the page cache, in alternating rounds (bench/lib/measure.ts):
//   A. `pi-image flash IMG FILE --yes --bmap B` (verify on: reads every mapped range back, sha256 against the bmap)
//      vs `bmaptool copy --bmap B IMG FILE && sync` (checksums the image while reading; no read-back). Target <= 1.0x.
//   B. `pi-image flash IMG FILE --yes` without a bmap (maps on the fly, verify compares with the image)
//      vs `bmaptool create IMG > B && bmaptool copy --bmap B IMG FILE && sync`. Target <= 1.0x.
// Also printed: peak memory of each process tree, and the in-process breakdown the CLI reports (write / verify).
// Every target is compared with the image (cmp) after its round, untimed. Usage: npx tsx bench/flash.ts [--rounds N]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { realisticImage } from './lib/realistic-image.ts';
import { cli, machineLine, measure, memoryLine, ratioLine, rounds, roundsArg, sync, ROOT, SBIN_PATH, median, type Measured, startLine } from './lib/measure.ts';

const n = roundsArg(5);
const { img } = await realisticImage();
const pi = cli();
mkdirSync(join(ROOT, 'bench', '.tmp'), { recursive: true });
const dir = mkdtempSync(join(ROOT, 'bench', '.tmp', 'flash-'));
const env = { PATH: SBIN_PATH };
const target = join(dir, 'target.img');
const bmap = join(dir, 'realistic.img.bmap');
const fresh = () => {
  rmSync(target, { force: true });
  sync();
};
const check = () => {
  execFileSync('cmp', [img, target]);
  fresh();
};
/** The CLI's own account of a run (--json): seconds writing and verifying. */
const breakdown: Record<string, { write: number[]; verify: number[] }> = {};
const note = (side: string, m: Measured): Measured => {
  const line = m.stdout.split('\n').find((l) => l.includes('"event":"flashed"'));
  if (line) {
    const e = JSON.parse(line) as { writeSeconds: number; verifySeconds: number };
    (breakdown[side] ??= { write: [], verify: [] }).write.push(e.writeSeconds);
    breakdown[side].verify.push(e.verifySeconds);
  }
  return m;
};

try {
  console.log(startLine('flash'));
  console.log(`image ${img}: ${(statSync(img).size / 2 ** 30).toFixed(2)} GiB, ${(statSync(img).blocks * 512 / 2 ** 30).toFixed(2)} GiB allocated`);
  execFileSync('sh', ['-c', `cat "${img}" > /dev/null`]); // the image in the page cache for every side
  execFileSync('bmaptool', ['-q', 'create', '-o', bmap, img], { env: { ...process.env, ...env } });
  fresh();

  console.log(`\nA. with a bmap, ${n} rounds`);
  const a = await rounds(n, [
    { name: 'bmaptool copy && sync', run: () => measure('sh', ['-c', `bmaptool -q copy --bmap "${bmap}" "${img}" "${target}" && sync`], { env }), after: check },
    { name: 'pi-image flash --bmap', run: async () => note('A', await measure(pi[0], [...pi.slice(1), 'flash', img, target, '--yes', '--bmap', bmap, '--json'], { env })), after: check },
  ]);
  console.log(`  ${ratioLine(a, 'pi-image flash --bmap', 'bmaptool copy && sync').text}   (target <= 1.0x)`);
  for (const s of a.names) console.log(`  ${memoryLine(a, s).text}`);

  console.log(`\nB. without a bmap, ${n} rounds`);
  const otf = join(dir, 'otf.bmap');
  const b = await rounds(n, [
    {
      name: 'bmaptool create + copy && sync',
      run: () => measure('sh', ['-c', `bmaptool -q create -o "${otf}" "${img}" && bmaptool -q copy --bmap "${otf}" "${img}" "${target}" && sync`], { env }),
      after: () => {
        rmSync(otf, { force: true });
        check();
      },
    },
    { name: 'pi-image flash (on the fly)', run: async () => note('B', await measure(pi[0], [...pi.slice(1), 'flash', img, target, '--yes', '--json'], { env })), after: check },
  ]);
  console.log(`  ${ratioLine(b, 'pi-image flash (on the fly)', 'bmaptool create + copy && sync').text}   (target <= 1.0x)`);
  for (const s of b.names) console.log(`  ${memoryLine(b, s).text}`);

  console.log('\nbreakdown (the CLI\'s own --json figures, medians): ');
  for (const [k, v] of Object.entries(breakdown)) console.log(`  ${k}: write ${median(v.write).toFixed(2)} s, verify ${median(v.verify).toFixed(2)} s`);
  console.log(`load at the end: ${machineLine()}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
