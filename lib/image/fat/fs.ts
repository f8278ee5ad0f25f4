// FatFs: path-level operations on a FAT12/16/32 volume held in a BlockIO (a partition window of an image):
// list, stat, read (whole or streamed), create/overwrite, mkdir, unlink, rmdir, rename, used byte ranges.
// Every change goes through FatTable (both FATs, FSInfo) and FatDir; timestamps come from an injectable clock.
import { CorruptImageError, InputError, NotFoundError } from '../../errors.ts';
import type { BlockIO } from '../io.ts';
import type { ByteRange } from '../sparse.ts';
import { parseBootSector, type FatGeometry } from './bpb.ts';
import { FatTable, FREE } from './table.ts';
import { FatDir, type DirSlotEntry, type FatEntry } from './dir.ts';
import {
  ATTR_ARCHIVE,
  ATTR_DIR,
  exactShortName,
  generateShortName,
  lfnEntries,
  makeShortEntry,
  setEntryCluster,
  setEntryMtime,
  validateLongName,
} from './dirent.ts';
import { walkTree } from '../tree.ts';
import { readChain, writeChain, type FileSource } from './file-data.ts';

export type { FatEntry } from './dir.ts';

export type { ByteRange } from '../sparse.ts';

function splitPath(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new InputError(`FAT path ${path}: '..' is not supported`);
  return parts;
}

export type { FileSource } from './file-data.ts';

export interface FatOpenOptions {
  /** Timestamps for what is written (default: now). */
  clock?: () => Date;
  /**
   * Overwrite clusters with zeros when they are freed (a file shrinks or goes). For an image whose unmapped blocks
   * must read as zeros: its checksums (image/digest.ts) treat everything outside the allocated clusters as zero,
   * and a freed cluster keeps its old bytes otherwise.
   */
  zeroFreed?: boolean;
}

const ZERO_CHUNK = Buffer.alloc(1 << 20);

export class FatFs {
  readonly fatType: 12 | 16 | 32;
  readonly clusterSize: number;
  readonly geometry: FatGeometry;
  private readonly fat: FatTable;
  private readonly clock: () => Date;
  private readonly zeroFreed: boolean;

  private constructor(
    private readonly io: BlockIO,
    opts: FatOpenOptions,
  ) {
    this.geometry = parseBootSector(io);
    this.fatType = this.geometry.fatType;
    this.clusterSize = this.geometry.clusterSize;
    this.fat = new FatTable(io, this.geometry);
    this.clock = opts.clock ?? (() => new Date());
    this.zeroFreed = opts.zeroFreed ?? false;
  }

  /** Open the FAT volume in `io` (a partition SliceIO); throws CorruptImageError when it is not a sane FAT. */
  static open(io: BlockIO, opts: FatOpenOptions = {}): FatFs {
    return new FatFs(io, opts);
  }

  /** Give clusters back; with zeroFreed, their old bytes are overwritten with zeros. */
  private release(clusters: number[]): void {
    for (const c of clusters) this.fat.set(c, FREE);
    if (!this.zeroFreed) return;
    const sorted = [...clusters].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length; ) {
      let j = i + 1;
      while (j < sorted.length && sorted[j] === sorted[j - 1]! + 1) j++;
      let off = this.geometry.dataOffset + (sorted[i]! - 2) * this.clusterSize;
      const end = this.geometry.dataOffset + (sorted[j - 1]! - 1) * this.clusterSize;
      while (off < end) {
        const n = Math.min(ZERO_CHUNK.length, end - off);
        this.io.write(off, n === ZERO_CHUNK.length ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, n));
        off += n;
      }
      i = j;
    }
  }

  private rootDir(): FatDir {
    const g = this.geometry;
    return g.fatType === 32 ? new FatDir(this.io, g, this.fat, g.rootCluster, this.io.base + 44) : new FatDir(this.io, g, this.fat, 0, 0);
  }

  private openDir(e: DirSlotEntry): FatDir {
    if (e.firstCluster === 0) return this.rootDir(); // '..' of a first-level directory
    return new FatDir(this.io, this.geometry, this.fat, e.firstCluster, e.where);
  }

  /** Walk to the directory holding `parts`, returning it and the last component's entry (if any). */
  private walk(path: string): { parent: FatDir; name: string; entry?: DirSlotEntry } | { root: FatDir } {
    const parts = splitPath(path);
    let dir = this.rootDir();
    if (parts.length === 0) return { root: dir };
    for (let i = 0; i < parts.length - 1; i++) {
      const e = dir.find(parts[i]);
      if (!e) throw new NotFoundError(`${this.io.name}: /${parts.slice(0, i + 1).join('/')} does not exist`);
      if (!e.isDirectory) throw new NotFoundError(`${this.io.name}: /${parts.slice(0, i + 1).join('/')} is not a directory`);
      dir = this.openDir(e);
    }
    const name = parts[parts.length - 1];
    return { parent: dir, name, entry: dir.find(name) };
  }

  private need(path: string): DirSlotEntry {
    const w = this.walk(path);
    if ('root' in w) throw new InputError(`${this.io.name}: '/' is the root directory`);
    if (!w.entry) throw new NotFoundError(`${this.io.name}: ${path} does not exist`);
    return w.entry;
  }

  private dirAt(path: string): FatDir {
    const w = this.walk(path);
    if ('root' in w) return w.root;
    if (!w.entry) throw new NotFoundError(`${this.io.name}: ${path} does not exist`);
    if (!w.entry.isDirectory) throw new NotFoundError(`${this.io.name}: ${path} is not a directory`);
    return this.openDir(w.entry);
  }

  /** Volume label: the root directory's label entry, else the boot sector's; '' for none / 'NO NAME'. */
  label(): string {
    const l = this.rootDir().volumeLabel ?? this.geometry.bpbLabel;
    return l === 'NO NAME' ? '' : l;
  }

  readdir(path: string): FatEntry[] {
    return this.dirAt(path).list().map(publicEntry);
  }

  /**
   * Every entry of the tree, depth first, with its absolute path (the root itself not included). A directory met a
   * second time (an entry pointing back at an ancestor, or at another directory) is a loop: CorruptImageError naming
   * the path of the entry and the one it repeats, so no walk can go round for ever or silently skip a subtree.
   */
  *tree(): Iterable<{ path: string; entry: FatEntry }> {
    for (const { path, entry } of this.slotTree()) yield { path, entry: publicEntry(entry) };
  }

  /** tree() with each entry's slot (where it lives, for errors). */
  private slotTree(): Iterable<{ path: string; entry: DirSlotEntry }> {
    const root = this.rootDir();
    const walk = walkTree<DirSlotEntry, DirSlotEntry>(
      { path: '/', key: root.cluster, children: root.list() },
      (e) => e.name,
      (e) => ({ value: e, dir: e.isDirectory ? { key: e.firstCluster, children: () => this.openDir(e).list() } : undefined }),
      (path, key, first, e) => new CorruptImageError(`${this.io.name}: directory loop at ${path}: it points back to ${first} (cluster ${key})`, e.where),
    );
    return (function* () {
      for (const { path, value } of walk) yield { path, entry: value };
    })();
  }

  /** Walk the whole tree once, following each file's cluster chain in the FAT (not its data): throws on a directory
   *  loop, a damaged directory, or a chain that loops, leaves the volume or is shorter than its file, anywhere. */
  checkTree(): number {
    let n = 0;
    for (const { path, entry } of this.slotTree()) {
      n++;
      if (entry.isDirectory || entry.size === 0) continue;
      const need = Math.ceil(entry.size / this.clusterSize);
      let got = 0;
      for (const _ of this.fat.chain(entry.firstCluster, entry.where, need)) got++;
      if (got < need) {
        throw new CorruptImageError(`${this.io.name}: file ${path} has ${entry.size} bytes but its cluster chain holds only ${got} clusters`, entry.where);
      }
    }
    return n;
  }

  stat(path: string): FatEntry {
    const w = this.walk(path);
    if ('root' in w) {
      return { name: '', shortName: '', isDirectory: true, size: 0, firstCluster: this.geometry.rootCluster, mtime: new Date(0), attributes: ATTR_DIR };
    }
    if (!w.entry) throw new NotFoundError(`${this.io.name}: ${path} does not exist`);
    return publicEntry(w.entry);
  }

  exists(path: string): boolean {
    try {
      this.stat(path);
      return true;
    } catch (e) {
      if (e instanceof NotFoundError) return false;
      throw e;
    }
  }

  readFile(path: string): Buffer {
    const e = this.need(path);
    if (e.isDirectory) throw new NotFoundError(`${this.io.name}: ${path} is a directory`);
    const out = Buffer.allocUnsafe(e.size);
    let pos = 0;
    for (const c of this.chunks(e)) {
      c.copy(out, pos);
      pos += c.length;
    }
    return out;
  }

  /** Stream a file's bytes in chunks of up to 1 MiB (constant memory for big files). */
  readFileChunks(path: string): Iterable<Buffer> {
    const e = this.need(path);
    if (e.isDirectory) throw new NotFoundError(`${this.io.name}: ${path} is a directory`);
    return this.chunks(e);
  }

  private chunks(e: DirSlotEntry): Generator<Buffer> {
    return readChain(this.io, this.geometry, this.fat, e);
  }

  private writeClusters(cl: number[], src: FileSource): void {
    writeChain(this.io, this.geometry, cl, src);
  }

  /**
   * Create or overwrite a file; the cluster chain grows or shrinks in place, freed clusters go back. `data` is the
   * bytes, or a size and the chunks that make it up (streamed in: constant memory for big files such as a kernel).
   */
  writeFile(path: string, data: Uint8Array | FileSource): void {
    const w = this.walk(path);
    if ('root' in w) throw new InputError(`${this.io.name}: cannot write to '/'`);
    const { parent, name } = w;
    const now = this.clock();
    const src: FileSource = data instanceof Uint8Array ? { size: data.length, chunks: [data] } : data;
    const length = src.size;
    const need = Math.ceil(length / this.clusterSize);
    if (w.entry) {
      const e = w.entry;
      if (e.isDirectory) throw new InputError(`${this.io.name}: ${path} is a directory`);
      const old = e.firstCluster ? [...this.fat.chain(e.firstCluster, e.where)] : [];
      let cl: number[];
      if (need <= old.length) {
        cl = old.slice(0, need);
        if (need > 0) this.fat.set(old[need - 1], this.fat.eoc);
        this.release(old.slice(need));
      } else {
        const extra = this.fat.allocChain(need - old.length, old.length ? old[old.length - 1] : undefined);
        cl = old.concat(extra);
      }
      this.writeClusters(cl, src);
      const s = parent.slotBytes(e.slot);
      setEntryCluster(s, cl.length ? cl[0] : 0);
      s.writeUInt32LE(length, 28);
      setEntryMtime(s, now);
      s[11] |= ATTR_ARCHIVE;
      parent.writeSlot(e.slot, s);
    } else {
      validateLongName(name, path);
      const cl = this.fat.allocChain(need);
      this.undoOnError(cl, () => {
        this.writeClusters(cl, src);
        parent.addEntries(this.entrySet(parent, name, ATTR_ARCHIVE, cl.length ? cl[0] : 0, length, now));
      });
    }
    this.fat.flush();
  }

  /** Run `fn`; if it throws (say the directory is full), give the freshly allocated clusters back first. */
  private undoOnError(clusters: number[], fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.release(clusters);
      this.fat.flush();
      throw e;
    }
  }

  /** Long-name entries (when needed) plus the short entry for a new name in `dir`. */
  private entrySet(dir: FatDir, name: string, attr: number, cluster: number, size: number, now: Date): Buffer[] {
    const exact = exactShortName(name);
    if (exact && !dir.takenShortNames().has(exact.raw.toString('latin1'))) {
      return [makeShortEntry(exact.raw, exact.nt, attr, cluster, size, now)];
    }
    const raw = generateShortName(name, dir.takenShortNames());
    return [...lfnEntries(name, raw), makeShortEntry(raw, 0, attr, cluster, size, now)];
  }

  mkdir(path: string): void {
    const w = this.walk(path);
    if ('root' in w || w.entry) throw new InputError(`${this.io.name}: ${path} already exists`);
    validateLongName(w.name, path);
    const now = this.clock();
    const [c] = this.fat.allocChain(1);
    this.undoOnError([c], () => {
      const buf = Buffer.alloc(this.clusterSize);
      makeShortEntry(Buffer.from('.          ', 'latin1'), 0, ATTR_DIR, c, 0, now).copy(buf, 0);
      const up = w.parent.cluster === this.geometry.rootCluster ? 0 : w.parent.cluster;
      makeShortEntry(Buffer.from('..         ', 'latin1'), 0, ATTR_DIR, up, 0, now).copy(buf, 32);
      this.io.write(this.geometry.dataOffset + (c - 2) * this.clusterSize, buf);
      w.parent.addEntries(this.entrySet(w.parent, w.name, ATTR_DIR, c, 0, now));
    });
    this.fat.flush();
  }

  /** mkdir -p: create every missing directory along `path`. */
  mkdirp(path: string): void {
    const parts = splitPath(path);
    for (let i = 1; i <= parts.length; i++) {
      const p = '/' + parts.slice(0, i).join('/');
      const w = this.walk(p);
      if ('root' in w) continue;
      if (!w.entry) this.mkdir(p);
      else if (!w.entry.isDirectory) throw new InputError(`${this.io.name}: ${p} exists and is not a directory`);
    }
  }

  unlink(path: string): void {
    const w = this.walk(path);
    if ('root' in w) throw new InputError(`${this.io.name}: cannot unlink '/'`);
    if (!w.entry) throw new NotFoundError(`${this.io.name}: ${path} does not exist`);
    if (w.entry.isDirectory) throw new InputError(`${this.io.name}: ${path} is a directory (use rmdir)`);
    if (w.entry.firstCluster) this.release([...this.fat.chain(w.entry.firstCluster, w.entry.where)]); // validated whole before any is freed
    w.parent.remove(w.entry);
    this.fat.flush();
  }

  rmdir(path: string): void {
    const w = this.walk(path);
    if ('root' in w) throw new InputError(`${this.io.name}: cannot remove '/'`);
    if (!w.entry) throw new NotFoundError(`${this.io.name}: ${path} does not exist`);
    if (!w.entry.isDirectory) throw new InputError(`${this.io.name}: ${path} is not a directory`);
    if (this.openDir(w.entry).list().length) throw new InputError(`${this.io.name}: directory ${path} is not empty`);
    this.release([...this.fat.chain(w.entry.firstCluster, w.entry.where)]);
    w.parent.remove(w.entry);
    this.fat.flush();
  }

  /** Move or rename a file or directory; an existing target file is replaced, an existing directory is an error. */
  rename(from: string, to: string): void {
    const src = this.walk(from);
    if ('root' in src || !src.entry) throw new NotFoundError(`${this.io.name}: ${from} does not exist`);
    const dst = this.walk(to);
    if ('root' in dst) throw new InputError(`${this.io.name}: cannot rename onto '/'`);
    validateLongName(dst.name, to);
    const e = src.entry;
    const fromParts = splitPath(from).map((p) => p.toUpperCase());
    const toParts = splitPath(to).map((p) => p.toUpperCase());
    if (e.isDirectory && toParts.length > fromParts.length && fromParts.every((p, i) => p === toParts[i])) {
      throw new InputError(`${this.io.name}: cannot move directory ${from} into itself (${to})`);
    }
    const sameDir = src.parent.cluster === dst.parent.cluster;
    let target = dst.parent;
    if (dst.entry) {
      const same = sameDir && dst.entry.slot === e.slot;
      if (!same) {
        if (dst.entry.isDirectory || e.isDirectory) throw new InputError(`${this.io.name}: ${to} already exists`);
        this.unlink(to);
        target = this.dirAt(to.split('/').slice(0, -1).join('/') || '/');
      }
    }
    const s = src.parent.slotBytes(e.slot);
    const build = (): Buffer[] => {
      const set = this.entrySet(target, dst.name, s[11], e.firstCluster, e.isDirectory ? 0 : e.size, this.clock());
      // Keep the short entry's attributes, cluster, size and timestamps: only the name changes.
      const short = set[set.length - 1];
      short[11] = s[11];
      s.copy(short, 13, 13, 32); // byte 12 (NT lowercase flags) belongs to the new name
      return set;
    };
    if (sameDir) {
      // Same directory: drop the old entry first, which frees its slots and its short name.
      target.remove(target.entries.find((x) => x.slot === e.slot) ?? e);
      target.addEntries(build());
    } else {
      target.addEntries(build());
      src.parent.remove(e);
    }
    if (e.isDirectory && !sameDir) {
      // Point '..' of the moved directory at its new parent.
      const moved = new FatDir(this.io, this.geometry, this.fat, e.firstCluster, e.where);
      const dotdot = moved.entries.find((x) => x.shortName === '..');
      if (dotdot) {
        const d = moved.slotBytes(dotdot.slot);
        setEntryCluster(d, target.cluster === this.geometry.rootCluster ? 0 : target.cluster);
        moved.writeSlot(dotdot.slot, d);
      }
    }
    this.fat.flush();
  }

  /** Byte ranges of the volume that hold data: boot sector, FATs, fixed root directory, allocated clusters. */
  usedRanges(): ByteRange[] {
    const g = this.geometry;
    const out: ByteRange[] = [{ start: 0, length: g.dataOffset }];
    for (const [first, count] of this.fat.allocatedRuns()) {
      const start = g.dataOffset + (first - 2) * g.clusterSize;
      const length = count * g.clusterSize;
      const last = out[out.length - 1];
      if (last.start + last.length === start) last.length += length;
      else out.push({ start, length });
    }
    return out;
  }

  /** Bytes of the data area (clusters). */
  totalBytes(): number {
    return this.geometry.clusterCount * this.clusterSize;
  }

  freeBytes(): number {
    return this.fat.freeClusters() * this.clusterSize;
  }

  /** Write cached FAT sectors to every FAT copy and update FSInfo (each operation already does this). */
  flush(): void {
    this.fat.flush();
  }
}

function publicEntry(e: DirSlotEntry): FatEntry {
  return {
    name: e.name,
    shortName: e.shortName,
    isDirectory: e.isDirectory,
    size: e.size,
    firstCluster: e.firstCluster,
    mtime: e.mtime,
    attributes: e.attributes,
  };
}
