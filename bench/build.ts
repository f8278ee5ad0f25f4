// Build benchmark, the CLI as a user runs it (`pi-image build --all`, 4 nodes of profiles/yarpi4.yaml), on the
// realistic 3 GiB image, in alternating rounds against baselines on the same files (bench/lib/measure.ts):
//   cold: build from the local .img.xz into an empty cache  vs  `xz -dc IMG.xz > /dev/null`        (target <= 1.15x)
//   warm: build again from the cached base                  vs  four `cp --sparse=always` of the base (<= 1.1x)
//   reflink (XFS and btrfs, each made in a file and loop-mounted by this bench when it may; skipped with the reason
//   otherwise): warm build with cache and output there      vs  one `cp --sparse=always --reflink=never` of the
//   base on that file system                                                                        (<= 0.1x)
// Peak memory of the build's whole process tree (node with its worker threads, xz) and of its largest process.
// Usage: npx tsx bench/build.ts [--rounds N] [--skip-cold] [--skip-reflink]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { realisticImage } from './lib/realistic-image.ts';
import { cli, machineLine, measure, memoryLine, ratioLine, rounds, roundsArg, sync, ROOT, SBIN_PATH, startLine } from './lib/measure.ts';

const n = roundsArg(3);
const args = process.argv.slice(2);
const img = await realisticImage();
const pi = cli();
mkdirSync(join(ROOT, 'bench', '.tmp'), { recursive: true });
const work = mkdtempSync(join(ROOT, 'bench', '.tmp', 'build-'));
const env = { PATH: SBIN_PATH };
const secrets = join(work, 'secrets');
const build = (cache: string, out: string, image = img.xz) =>
  measure(pi[0], [...pi.slice(1), 'build', '--all', '--profile', join(ROOT, 'profiles', 'yarpi4.yaml'), '--secrets', secrets, '--image', image, '--cache', cache, '--out', out, '--quiet'], { env });
/** The raw base image in a cache directory. */
const baseIn = (cache: string): string => {
  const dir = join(cache, 'images');
  const f = readdirSync(dir).find((x) => x.endsWith('.img'));
  if (!f) throw new Error(`no base image in ${dir}`);
  return join(dir, f);
};
const results: string[] = [];

try {
  console.log(startLine('build'));
  execFileSync('sh', ['-c', `cat "${img.xz}" > /dev/null`]);

  if (!args.includes('--skip-cold')) {
    console.log(`\ncold build, ${n} rounds`);
    const cold = await rounds(n, [
      { name: 'xz -dc > /dev/null', run: () => measure('sh', ['-c', `xz -dc "${img.xz}" > /dev/null`]) },
      {
        name: 'pi-image build --all (cold)',
        run: (r) => build(join(work, `cold-cache-${r}`), join(work, `cold-out-${r}`)),
        after: (r) => {
          rmSync(join(work, `cold-cache-${r}`), { recursive: true, force: true });
          rmSync(join(work, `cold-out-${r}`), { recursive: true, force: true });
          sync();
        },
      },
    ]);
    results.push(`cold: ${ratioLine(cold, 'pi-image build --all (cold)', 'xz -dc > /dev/null').text}   (target <= 1.15x)`, `  ${memoryLine(cold, 'pi-image build --all (cold)').text}`);
    console.log(results.slice(-2).join('\n'));
  }

  // The warm cache: one untimed cold build.
  const cache = join(work, 'cache');
  await build(cache, join(work, 'out-prep'));
  rmSync(join(work, 'out-prep'), { recursive: true, force: true });
  const base = baseIn(cache);
  sync();
  console.log(`\nwarm build, ${n} rounds (base ${base}: ${(statSync(base).blocks * 512 / 2 ** 30).toFixed(2)} GiB allocated)`);
  const copies = [1, 2, 3, 4].map((k) => join(work, `cp${k}.img`));
  const warm = await rounds(n, [
    {
      name: '4 x cp --sparse=always',
      run: () => measure('sh', ['-c', copies.map((c) => `cp --sparse=always "${base}" "${c}"`).join(' && ')]),
      after: () => {
        for (const c of copies) rmSync(c, { force: true });
        sync();
      },
    },
    {
      name: 'pi-image build --all (warm)',
      run: (r) => build(cache, join(work, `warm-out-${r}`)),
      after: (r) => {
        rmSync(join(work, `warm-out-${r}`), { recursive: true, force: true });
        sync();
      },
    },
  ]);
  results.push(`warm (ext4): ${ratioLine(warm, 'pi-image build --all (warm)', '4 x cp --sparse=always').text}   (target <= 1.1x)`, `  ${memoryLine(warm, 'pi-image build --all (warm)').text}`);
  console.log(results.slice(-2).join('\n'));

  if (!args.includes('--skip-reflink')) {
    for (const fsType of ['xfs', 'btrfs']) {
      const why = await reflinkRound(fsType, cache);
      if (why) results.push(`warm (${fsType}, reflinks): skipped: ${why}`);
    }
  }
  console.log(`\n== summary (${machineLine()})\n${results.join('\n')}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** A warm build on a loop-mounted `fsType` (cache and output there) against one cp; or why it could not run. */
async function reflinkRound(fsType: string, warmCache: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root to loop-mount a file system';
  const file = join(work, `${fsType}.fs`);
  const mnt = join(work, `${fsType}-mnt`);
  mkdirSync(mnt);
  execFileSync('truncate', ['-s', '16G', file]);
  const mk = spawnSync(`mkfs.${fsType}`, ['-q', ...(fsType === 'xfs' ? ['-m', 'reflink=1'] : []), file], { env: { ...process.env, PATH: SBIN_PATH }, encoding: 'utf8' });
  if (mk.status !== 0) return `mkfs.${fsType} failed: ${(mk.stderr || String(mk.error)).trim()}`;
  const mount = spawnSync('mount', ['-o', 'loop', file, mnt], { env: { ...process.env, PATH: SBIN_PATH }, encoding: 'utf8' });
  if (mount.status !== 0) return `cannot loop-mount here: ${mount.stderr.trim()}`;
  try {
    const cache = join(mnt, 'cache');
    execFileSync('cp', ['-a', '--sparse=always', warmCache, cache]);
    const base = baseIn(cache);
    sync();
    console.log(`\nwarm build on ${fsType} (loop-mounted file), ${n} rounds`);
    const copy = join(mnt, 'cp.img');
    const res = await rounds(n, [
      {
        name: `cp --sparse=always --reflink=never (${fsType})`,
        run: () => measure('cp', ['--sparse=always', '--reflink=never', base, copy]),
        after: () => {
          rmSync(copy, { force: true });
          sync();
        },
      },
      {
        name: `pi-image build --all (warm, ${fsType})`,
        run: (r) => build(cache, join(mnt, `out-${r}`)),
        after: (r) => {
          if (r === 0) console.log(`  shared: ${sharedLine(fsType, join(mnt, `out-${r}`, 'node1', 'ssd.img'))}`);
          rmSync(join(mnt, `out-${r}`), { recursive: true, force: true });
          sync();
        },
      },
    ]);
    results.push(
      `warm (${fsType}, reflinks): ${ratioLine(res, `pi-image build --all (warm, ${fsType})`, `cp --sparse=always --reflink=never (${fsType})`).text}   (target <= 0.1x)`,
      `  ${memoryLine(res, `pi-image build --all (warm, ${fsType})`).text}`,
    );
    console.log(results.slice(-2).join('\n'));
    return undefined;
  } finally {
    spawnSync('umount', [mnt]);
    rmSync(file, { force: true });
  }
}

/** How much of an SSD image shares its blocks (filefrag's "shared" extents). */
function sharedLine(fsType: string, path: string): string {
  const out = spawnSync('filefrag', ['-v', path], { encoding: 'utf8', env: { ...process.env, PATH: SBIN_PATH } }).stdout ?? '';
  const lines = out.split('\n').filter((l) => /^\s*\d+:/.test(l));
  let shared = 0;
  let all = 0;
  for (const l of lines) {
    const len = Number(l.split(':')[3]?.trim().split(/\s+/)[0] ?? 0);
    all += len;
    if (/shared/.test(l)) shared += len;
  }
  return `${fsType} ${path}: ${shared} of ${all} blocks in shared extents`;
}
