// Test images for the block-level code (sparse copy, bmap, flash): a sparse file with pseudo-random data at given
// places, optionally with a real MBR made by sfdisk, so mapped and unmapped regions are both present.
import { execFileSync } from 'node:child_process';
import { FileIO } from '../../lib/image/io.ts';
import type { ByteRange } from '../../lib/image/sparse.ts';

export const MiB = 1 << 20;

/** Deterministic non-zero pseudo-random bytes. */
export function pseudoRandom(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = (x >>> 0) & 0xff || 0x5a;
  }
  return b;
}

/**
 * Create `path` of `size` bytes, sparse, with pseudo-random data in `data`. With `mbr`, sfdisk then writes a
 * partition table (two partitions), so the first sector looks like a disk.
 */
export function scatteredImage(path: string, size: number, data: ByteRange[], opts: { mbr?: boolean } = {}): void {
  const io = FileIO.create(path, size);
  data.forEach((r, i) => io.write(r.start, pseudoRandom(r.length, i + 7)));
  io.close();
  if (opts.mbr) {
    const sectors = Math.floor(size / 512);
    execFileSync('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', path], {
      input: `label: dos\nlabel-id: 0x1234abcd\nstart=2048, size=${Math.floor(sectors / 4)}, type=c, bootable\nstart=${2048 + Math.floor(sectors / 4)}, type=83\n`,
      env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
  }
}
