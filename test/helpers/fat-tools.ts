// Test helpers for the FAT engine: make FAT images with the real mkfs.vfat (optionally inside an sfdisk'd disk
// at a non-zero offset) and check them with fsck.fat -n and mtools (mdir, mtype, mcopy, mmd).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PATH = `${process.env.PATH}:/usr/sbin:/sbin`;
export const toolEnv = { ...process.env, PATH, MTOOLS_SKIP_CHECK: '1', MTOOLS_NO_VFAT: '', LC_ALL: 'C.UTF-8', TZ: 'UTC' };

export function run(cmd: string, args: string[], input?: string): { code: number; out: string } {
  const r = spawnSync(cmd, args, { env: toolEnv, input, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

export function must(cmd: string, args: string[], input?: string): string {
  const r = run(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.out}`);
  return r.out;
}

export interface FatImage {
  /** Image file path. */
  path: string;
  /** Byte offset of the FAT volume inside the image. */
  offset: number;
  /** Volume size in bytes. */
  size: number;
  /** mtools -i argument ("file@@offset"). */
  m: string;
}

/**
 * A fresh FAT image made by mkfs.vfat. `offsetSectors` > 0 puts it in partition 1 of an sfdisk'd MBR disk.
 * Deterministic (--invariant, fixed volume id) so two images made alike are byte-identical.
 */
export function makeFat(path: string, opts: { fat: 12 | 16 | 32; kib: number; offsetSectors?: number; label?: string; spc?: number; rootEntries?: number }): FatImage {
  const off = (opts.offsetSectors ?? 0) * 512;
  const size = opts.kib * 1024;
  rmSync(path, { force: true });
  const args = ['--invariant', '-i', '12345678', '-F', String(opts.fat), '-n', opts.label ?? 'TESTVOL'];
  if (opts.spc) args.push('-s', String(opts.spc));
  if (opts.rootEntries) args.push('-r', String(opts.rootEntries));
  if (off) {
    writeFileSync(path, '');
    execFileSync('truncate', ['-s', String(off + size + 1024 * 1024), path]);
    must('sfdisk', ['-q', path], `label: dos\nlabel-id: 0x12345678\nstart=${opts.offsetSectors}, size=${size / 512}, type=c\n`);
    must('mkfs.vfat', [...args, `--offset=${opts.offsetSectors}`, path, String(opts.kib)]);
  } else {
    must('mkfs.vfat', [...args, '-C', path, String(opts.kib)]);
  }
  return { path, offset: off, size, m: `${path}@@${off}` };
}

/** Copy the volume of an offset image to a plain file (fsck.fat cannot take an offset). */
function volumeFile(img: FatImage): { file: string; cleanup: () => void } {
  if (img.offset === 0) return { file: img.path, cleanup: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'pi-image-fsck-'));
  const file = join(dir, 'vol.img');
  const fd = openSync(img.path, 'r');
  const buf = Buffer.alloc(img.size);
  readSync(fd, buf, 0, img.size, img.offset);
  closeSync(fd);
  writeFileSync(file, buf);
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** fsck.fat -n must exit 0 and print nothing but its banner and the summary line. Returns the summary. */
export function fsckClean(img: FatImage): string {
  const { file, cleanup } = volumeFile(img);
  try {
    const r = run('fsck.fat', ['-n', file]);
    const lines = r.out.split('\n').filter((l) => l.trim() !== '');
    const complaints = lines.filter((l) => !/^fsck\.fat \d/.test(l) && !/: \d+ files, \d+\/\d+ clusters$/.test(l));
    if (r.code !== 0 || complaints.length) {
      throw new Error(`fsck.fat -n complains (exit ${r.code}):\n${r.out}`);
    }
    return lines[lines.length - 1];
  } finally {
    cleanup();
  }
}

/** Recursive bare listing from mdir -/ -b: paths like '/a/b.txt', directories with a trailing '/'. */
export function mdirTree(img: FatImage): string[] {
  return bare(img, ['-/'])
    .filter((l) => l.startsWith('::/'))
    .map((l) => l.slice(2))
    .sort();
}

/** `mdir -b` lines; mdir -b exits 1 on an empty root, which is an empty listing, not a failure. */
function bare(img: FatImage, extra: string[]): string[] {
  const r = run('mdir', [...extra, '-b', '-i', img.m, '::']);
  if (r.code !== 0 && !(r.out.trim() === 'mdir: File "::" not found' && must('mdir', ['-i', img.m, '::']).includes('No files'))) {
    throw new Error(`mdir failed (${r.code}): ${r.out}`);
  }
  return r.code === 0 ? r.out.split('\n') : [];
}

export function mtype(img: FatImage, path: string): Buffer {
  const r = spawnSync('mtype', ['-i', img.m, `::${path}`], { env: toolEnv, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`mtype ${path}: ${r.stderr}`);
  return r.stdout;
}

/** Copy the whole tree out with one mcopy -s run; returns path -> bytes for every file. */
export function mcopyAll(img: FatImage): Map<string, Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-image-mcopy-'));
  try {
    const top = bare(img, []).filter((l) => l.startsWith('::/'));
    if (top.length) must('mcopy', ['-s', '-n', '-i', img.m, ...top.map((l) => l.replace(/\/$/, '')), dir]);
    const files = new Map<string, Buffer>();
    const walk = (d: string, rel: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p, `${rel}/${n}`);
        else files.set(`${rel}/${n}`, readFileSync(p));
      }
    };
    walk(dir, '');
    return files;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
