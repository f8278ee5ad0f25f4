// A realistic Pi base image for benchmarks, made once and cached under bench/.tmp/realistic/: 3 GiB, MBR,
// 256 MiB FAT32 `system-boot` at LBA 2048 with boot-like files, ext4 `writable` filling the rest with ~1.4 GiB of
// semi-compressible files (word text ~ like configs/docs/scripts, pseudo-random runs ~ like binaries and
// already-compressed data), plus its single-stream `.img.xz` (`xz -T1 -2`), compressing roughly like a real OS.
// Deterministic content (seeded generators, fixed ids and timestamps) so runs compare like with like.
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, ftruncateSync, writeFileSync, readFileSync, rmSync, renameSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RealisticImage {
  /** The raw, sparse 3 GiB image. */
  img: string;
  /** Its single-stream xz (`xz -T1 -2`). */
  xz: string;
  /** Byte offset and size of partition 1 (FAT32 system-boot). */
  bootStart: number;
  bootSize: number;
  /** Byte offset and size of partition 2 (ext4 writable). */
  rootStart: number;
  rootSize: number;
}

const VERSION = 'v1';
const MiB = 1024 * 1024;
const SIZE = 3 * 1024 * MiB;
const BOOT_LBA = 2048;
const BOOT_SECTORS = (256 * MiB) / 512;
const ROOT_LBA = BOOT_LBA + BOOT_SECTORS; // 526336, as in the 19.10.1 image
const ROOT_SECTORS = SIZE / 512 - ROOT_LBA;
const ROOT_USED = 1.4 * 1024 * MiB;

const here = dirname(fileURLToPath(import.meta.url));
const baseDir = join(here, '..', '.tmp', 'realistic');

function run(cmd: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): void {
  const r = spawnSync(cmd, args, { input, stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error ?? r.stderr?.toString()}`);
}

/** Deterministic pseudo-random bytes (AES-128-CTR keystream): incompressible, GB/s. */
function randomStream(seed: number): (n: number) => Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed >>> 0, 0);
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (n) => c.update(Buffer.alloc(n));
}

/** Text-like lines of words from a Zipf-ish vocabulary, half of them repeats of recent lines (as in configs,
 * scripts, docs): xz -2 gets ~4.5x on it at ~12 MB/s. */
function textMaker(seed: number): (n: number) => Buffer {
  let s = seed >>> 0 || 1;
  const rnd = (): number => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; return (s >>>= 0); };
  const letters = 'etaoinshrdlucmfwypvbgkqjxz_0123456789';
  const words: Buffer[] = [];
  for (let i = 0; i < 2048; i++) {
    const len = 2 + (rnd() % 9);
    let w = '';
    for (let j = 0; j < len; j++) w += letters[Math.min(rnd() % 40, rnd() % 40) % letters.length];
    words.push(Buffer.from(w));
  }
  const seps = [' ', ' ', ' ', ' ', ', ', '.', '=', '/', '(', ') '].map((x) => Buffer.from(x));
  const nl = [Buffer.from('\n'), Buffer.from('\n    '), Buffer.from('\n        ')];
  return (n) => {
    const out = Buffer.allocUnsafe(n + 256);
    let p = 0;
    const lines: [number, number][] = [];
    while (p < n) {
      const r0 = rnd();
      if (lines.length > 8 && r0 % 100 < 50) {
        const [a, b] = lines[lines.length - 1 - ((r0 >>> 8) % Math.min(lines.length, 64))];
        if (p + (b - a) > n + 200) break;
        out.copy(out, p, a, b); p += b - a; continue;
      }
      const start = p;
      const k = 3 + (r0 >>> 8) % 8;
      for (let i = 0; i < k && p < n; i++) {
        const r = rnd();
        const w = words[(r & 0x7ff) % (1 + ((r >>> 11) & 0x7ff))];
        p += w.copy(out, p);
        p += seps[(r >>> 26) % seps.length].copy(out, p);
      }
      p += nl[r0 % 3].copy(out, p);
      lines.push([start, p]);
    }
    return out.subarray(0, n);
  };
}

function makeTree(root: string): void {
  const text = textMaker(12345);
  const rand = randomStream(678);
  let used = 0;
  let i = 0;
  let s = 99;
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 8;
  };
  for (const d of ['etc', 'usr/bin', 'usr/lib', 'usr/share/doc', 'var/lib', 'boot', 'home/ubuntu']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'etc/fstab'), 'LABEL=writable\t/\text4\tdefaults\t0 0\nLABEL=system-boot\t/boot/firmware\tvfat\tdefaults\t0 1\n');
  writeFileSync(join(root, 'etc/hostname'), 'ubuntu\n');
  while (used < ROOT_USED) {
    const kind = rnd() % 100;
    // Mostly small files, a few large ones, as in an OS tree.
    const size = kind < 60 ? 1024 + (rnd() % (32 * 1024)) : kind < 95 ? 64 * 1024 + (rnd() % (512 * 1024)) : 2 * MiB + (rnd() % (8 * MiB));
    const dir = join(root, ['usr/lib', 'usr/share/doc', 'usr/bin', 'var/lib'][i % 4], `pkg${Math.floor(i / 40)}`);
    if (i % 40 === 0 || !existsSync(dir)) mkdirSync(dir, { recursive: true });
    // ~15% of bytes pseudo-random (compressed data, firmware), the rest text-like.
    const r = rnd() % 100;
    const randomPart = r < 10 ? size : r < 30 ? Math.floor(size / 4) : 0;
    const buf = Buffer.concat([rand(randomPart), text(size - randomPart)]);
    writeFileSync(join(dir, `f${i}`), buf);
    used += size;
    i++;
  }
}

function makeBootFiles(dir: string): void {
  mkdirSync(join(dir, 'overlays'), { recursive: true });
  const fixture = join(here, '..', '..', 'test', 'fixtures', 'ubuntu-19.10.1-raspi', 'system-boot');
  for (const f of readdirSync(fixture)) writeFileSync(join(dir, f), readFileSync(join(fixture, f)));
  const rand = randomStream(4242);
  const text = textMaker(777);
  writeFileSync(join(dir, 'vmlinuz'), rand(8 * MiB)); // a gzip'd kernel is incompressible
  writeFileSync(join(dir, 'initrd.img'), rand(24 * MiB));
  writeFileSync(join(dir, 'start4.elf'), Buffer.concat([rand(1 * MiB), text(1 * MiB)]));
  writeFileSync(join(dir, 'bootcode.bin'), rand(52 * 1024));
  for (const b of ['bcm2711-rpi-4-b', 'bcm2710-rpi-3-b', 'bcm2710-rpi-3-b-plus']) writeFileSync(join(dir, `${b}.dtb`), text(40 * 1024));
  for (let k = 0; k < 30; k++) writeFileSync(join(dir, 'overlays', `ov${k}.dtbo`), text(2048));
}

/** Make (once) and return the realistic image; later calls return the cached one at once. */
export async function realisticImage(): Promise<RealisticImage> {
  const dir = join(baseDir, VERSION);
  const img = join(dir, 'realistic.img');
  const xz = join(dir, 'realistic.img.xz');
  const result: RealisticImage = { img, xz, bootStart: BOOT_LBA * 512, bootSize: BOOT_SECTORS * 512, rootStart: ROOT_LBA * 512, rootSize: ROOT_SECTORS * 512 };
  if (existsSync(img) && existsSync(xz)) return result;
  mkdirSync(dir, { recursive: true });
  const work = join(dir, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const tmpImg = join(work, 'realistic.img');
  try {
    const fd = openSync(tmpImg, 'w');
    ftruncateSync(fd, SIZE);
    closeSync(fd);
    run('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', tmpImg], `label: dos\nlabel-id: 0x5452574f\n${BOOT_LBA},${BOOT_SECTORS},c,*\n${ROOT_LBA},,83\n`);
    const fake = { E2FSPROGS_FAKE_TIME: '1571000000', SOURCE_DATE_EPOCH: '1571000000' };
    run('mkfs.vfat', ['-F', '32', '-s', '2', '-n', 'system-boot', '-i', '5452574f', '--invariant', `--offset=${BOOT_LBA}`, tmpImg, String(BOOT_SECTORS / 2)]);
    const boot = join(work, 'boot');
    makeBootFiles(boot);
    run('mcopy', ['-s', '-i', `${tmpImg}@@${BOOT_LBA * 512}`, ...readdirSync(boot).map((f) => join(boot, f)), '::/'], undefined, { MTOOLS_SKIP_CHECK: '1' });
    const tree = join(work, 'tree');
    makeTree(tree);
    run('mkfs.ext4', ['-q', '-F', '-L', 'writable', '-U', '6f1c1e28-5ab3-4b53-9a8e-5a6e5f0d0b01', '-E', `offset=${ROOT_LBA * 512},hash_seed=6f1c1e28-5ab3-4b53-9a8e-5a6e5f0d0b02`, '-d', tree, tmpImg, `${(ROOT_SECTORS * 512) / 1024}k`], undefined, fake);
    rmSync(tree, { recursive: true, force: true });
    rmSync(boot, { recursive: true, force: true });
    run('sh', ['-c', `xz -T1 -2 -c -k "${tmpImg}" > "${tmpImg}.xz"`]);
    renameSync(`${tmpImg}.xz`, xz);
    renameSync(tmpImg, img);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return result;
}

// `npx tsx bench/lib/realistic-image.ts` makes the image and prints where it is.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t = Date.now();
  const r = await realisticImage();
  console.log(JSON.stringify(r), `${((Date.now() - t) / 1000).toFixed(1)}s`);
}
