// A FAT file's bytes in its cluster chain: read as runs of clusters that follow one another on disk (streamed, at
// most 1 MiB a piece), written the same way. No directory or FAT changes here (fs.ts does those).
// Invariants:
// - A chain shorter than the file's size is a CorruptImageError at the entry's image offset.
// - A write takes exactly the bytes the source announced, and zeroes the last cluster's slack.
import { CorruptImageError, InputError } from '../../errors.ts';
import type { BlockIO } from '../io.ts';
import type { FatGeometry } from './bpb.ts';
import type { FatTable } from './table.ts';
import type { DirSlotEntry } from './dir.ts';

const CHUNK = 1 << 20; // streaming read size

/** A file's bytes given as chunks (in order) that add up to `size`. */
export interface FileSource {
  size: number;
  chunks: Iterable<Uint8Array>;
}

/** Stream the bytes of entry `e` from its cluster chain. */
export function* readChain(io: BlockIO, g: FatGeometry, fat: FatTable, e: DirSlotEntry): Generator<Buffer> {
  if (e.size === 0) return;
  const cs = g.clusterSize;
  const need = Math.ceil(e.size / cs);
  let left = e.size;
  let runStart = -1;
  let runLen = 0;
  const emit = (): Buffer => {
    const len = Math.min(runLen * cs, left);
    const b = io.read(g.dataOffset + (runStart - 2) * cs, len);
    left -= len;
    return b;
  };
  let got = 0;
  for (const c of fat.chain(e.firstCluster, e.where, need)) {
    got++;
    if (runStart >= 0 && c === runStart + runLen && runLen * cs < CHUNK) runLen++;
    else {
      if (runStart >= 0) yield emit();
      runStart = c;
      runLen = 1;
    }
  }
  if (got < need) {
    throw new CorruptImageError(`${io.name}: file '${e.name}' has ${e.size} bytes but its cluster chain holds only ${got} clusters`, e.where);
  }
  if (runStart >= 0) yield emit();
}

/**
 * Write a file's bytes (given as chunks) into clusters `cl` (in order), zeroing the slack of the last cluster;
 * a chunk is written with as few writes as the chain allows (runs of clusters that follow one another on disk).
 */
export function writeChain(io: BlockIO, g: FatGeometry, cl: number[], src: FileSource): void {
  const cs = g.clusterSize;
  let pos = 0;
  for (const chunk of src.chunks) {
    if (pos + chunk.length > src.size) throw new InputError(`${io.name}: file source gives more than its ${src.size} bytes`);
    let done = 0;
    while (done < chunk.length) {
      const k = Math.floor(pos / cs);
      const within = pos % cs;
      let end = k + 1;
      while (end < cl.length && cl[end] === cl[end - 1] + 1 && (end - k) * cs - within < chunk.length - done && (end - k) * cs < 4 * CHUNK) end++;
      const n = Math.min(chunk.length - done, (end - k) * cs - within);
      io.write(g.dataOffset + (cl[k] - 2) * cs + within, chunk.subarray(done, done + n));
      done += n;
      pos += n;
    }
  }
  if (pos !== src.size) throw new InputError(`${io.name}: file source gave ${pos} bytes, not the ${src.size} it announced`);
  const slack = cl.length * cs - pos;
  if (slack > 0) io.write(g.dataOffset + (cl[cl.length - 1] - 2) * cs + (cs - slack), Buffer.alloc(slack));
}
