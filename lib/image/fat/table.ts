// The File Allocation Table: entry get/set for FAT12/16/32 through a small bounded page cache (never the whole
// FAT in memory), writes mirrored to every active FAT copy, chain walking with loop / range checks, free-cluster
// search from a next-free hint, and the FAT32 FSInfo free count and hint.
import { CorruptImageError } from '../../errors.ts';
import type { BlockIO } from '../io.ts';
import { FSINFO, fsInfoValid, type FatGeometry } from './bpb.ts';
import { NoSpaceError } from './errors.ts';

const PAGE = 4096;
const MAX_PAGES = 64; // 256 KiB of FAT cached at most

export const FREE = 0;
const ZERO_PAGE = Buffer.alloc(PAGE);

export class FatTable {
  private pages = new Map<number, Buffer>(); // page index -> bytes (insertion order = LRU order)
  /** The page page() returned last (always one of `pages`): scans and chains hit it for hundreds of entries. */
  private lastIndex = -1;
  private lastPage: Buffer | undefined;
  private dirty = new Set<number>();
  /** Highest valid cluster number. */
  readonly maxCluster: number;
  readonly eoc: number;
  private readonly mask: number;
  /** Last allocated cluster (search for free space starts after it). */
  private hint = 1;
  /** Free cluster count, or -1 while unknown. */
  private free = -1;
  private fsInfoValid = false;
  private fsInfoDirty = false;

  constructor(
    private readonly io: BlockIO,
    readonly g: FatGeometry,
  ) {
    this.maxCluster = g.clusterCount + 1;
    this.mask = g.fatType === 12 ? 0xfff : g.fatType === 16 ? 0xffff : 0x0fffffff;
    this.eoc = this.mask; // written as end-of-chain marker (0xFFF / 0xFFFF / 0x0FFFFFFF)
    if (g.fatType === 32 && g.fsInfoSector) this.readFsInfo();
  }

  private readFsInfo(): void {
    const off = this.g.fsInfoSector * this.g.bytesPerSector;
    const f = FSINFO.decode(this.io.read(off, 512));
    if (!fsInfoValid(f)) return;
    this.fsInfoValid = true;
    const free = f.freeCount;
    if (free <= this.g.clusterCount) this.free = free;
    const next = f.nextFree;
    if (next >= 2 && next <= this.maxCluster) this.hint = next;
  }

  /** Byte offset (within the volume) of cluster `n`'s FAT entry in the read FAT, for error messages. */
  entryOffset(n: number): number {
    return this.io.base + this.g.fatOffset + this.g.readFat * this.g.fatBytes + Math.floor((n * this.g.fatType) / 8);
  }

  private page(p: number): Buffer {
    if (p === this.lastIndex) return this.lastPage!; // already the most recent: no LRU move
    let buf = this.pages.get(p);
    if (buf) {
      this.pages.delete(p);
      this.pages.set(p, buf);
      this.lastIndex = p;
      this.lastPage = buf;
      return buf;
    }
    const start = p * PAGE;
    const len = Math.min(PAGE, this.g.fatBytes - start);
    buf = this.io.read(this.g.fatOffset + this.g.readFat * this.g.fatBytes + start, len);
    this.pages.set(p, buf);
    if (this.pages.size > MAX_PAGES) {
      for (const old of this.pages.keys()) {
        if (old === p) continue;
        if (this.dirty.has(old)) this.writePage(old);
        this.pages.delete(old);
        break;
      }
    }
    // The previous last page sits at the map's end (it went there when it became last), so the eviction above
    // never takes it while it is still cached here.
    this.lastIndex = p;
    this.lastPage = buf;
    return buf;
  }

  private byte(off: number): number {
    return this.page(Math.floor(off / PAGE))[off % PAGE];
  }
  private setByte(off: number, v: number): void {
    const p = Math.floor(off / PAGE);
    this.page(p)[off % PAGE] = v;
    this.dirty.add(p);
  }

  /** Raw FAT entry of cluster n (masked to 12/16/28 bits). */
  get(n: number): number {
    if (this.g.fatType === 32) {
      const off = n * 4;
      const pg = this.page(Math.floor(off / PAGE));
      return pg.readUInt32LE(off % PAGE) & 0x0fffffff;
    }
    if (this.g.fatType === 16) {
      const off = n * 2;
      return this.page(Math.floor(off / PAGE)).readUInt16LE(off % PAGE);
    }
    const off = n + (n >> 1);
    const v = this.byte(off) | (this.byte(off + 1) << 8);
    return n & 1 ? v >> 4 : v & 0xfff;
  }

  set(n: number, value: number): void {
    const old = this.get(n);
    if (this.free >= 0) {
      if (old === FREE && value !== FREE) this.free--;
      else if (old !== FREE && value === FREE) this.free++;
    }
    if (old !== FREE || value !== FREE) this.fsInfoDirty = true;
    if (this.g.fatType === 32) {
      const off = n * 4;
      const p = Math.floor(off / PAGE);
      const pg = this.page(p);
      const hi = pg.readUInt32LE(off % PAGE) & 0xf0000000; // the top 4 bits are reserved: keep them
      pg.writeUInt32LE((hi | (value & 0x0fffffff)) >>> 0, off % PAGE);
      this.dirty.add(p);
    } else if (this.g.fatType === 16) {
      const off = n * 2;
      const p = Math.floor(off / PAGE);
      this.page(p).writeUInt16LE(value & 0xffff, off % PAGE);
      this.dirty.add(p);
    } else {
      const off = n + (n >> 1);
      const v = value & 0xfff;
      if (n & 1) {
        this.setByte(off, (this.byte(off) & 0x0f) | ((v << 4) & 0xf0));
        this.setByte(off + 1, v >> 4);
      } else {
        this.setByte(off, v & 0xff);
        this.setByte(off + 1, (this.byte(off + 1) & 0xf0) | (v >> 8));
      }
    }
  }

  isEnd(v: number): boolean {
    return v >= (this.mask & ~7);
  }

  /** Check a cluster number taken from a directory entry or a chain; `where` names the referring byte offset. */
  checkCluster(n: number, where: number, what: string): void {
    if (n < 2 || n > this.maxCluster) {
      throw new CorruptImageError(`${this.io.name}: ${what} points to cluster ${n}, outside 2..${this.maxCluster}`, where);
    }
  }

  /**
   * Walk the chain starting at `first`, yielding each cluster. Loops, free or bad clusters inside a chain and
   * out-of-range links are CorruptImageErrors with the byte offset of the offending FAT entry. `limit` (optional)
   * is the number of clusters the chain may hold at most (from the file size): longer chains are reported.
   */
  *chain(first: number, where: number, limit?: number): Generator<number> {
    this.checkCluster(first, where, 'directory entry');
    const seen = new Uint8Array((this.maxCluster >> 3) + 1);
    let n = first;
    let count = 0;
    for (;;) {
      if (seen[n >> 3] & (1 << (n & 7))) {
        throw new CorruptImageError(`${this.io.name}: cluster chain starting at ${first} loops back to cluster ${n}`, this.entryOffset(n));
      }
      seen[n >> 3] |= 1 << (n & 7);
      count++;
      if (limit !== undefined && count > limit) {
        throw new CorruptImageError(
          `${this.io.name}: cluster chain starting at ${first} is longer than the file size allows (${limit} clusters)`,
          this.entryOffset(n),
        );
      }
      yield n;
      const next = this.get(n);
      if (this.isEnd(next)) return;
      if (next === FREE) throw new CorruptImageError(`${this.io.name}: cluster chain starting at ${first} runs into free cluster (entry of ${n} is 0)`, this.entryOffset(n));
      if (next === this.mask - 8) {
        throw new CorruptImageError(`${this.io.name}: cluster chain starting at ${first} runs into a bad cluster`, this.entryOffset(n));
      }
      if (next < 2 || next > this.maxCluster) {
        throw new CorruptImageError(`${this.io.name}: cluster ${n} links to cluster ${next}, outside 2..${this.maxCluster}`, this.entryOffset(n));
      }
      n = next;
    }
  }

  /** Find `count` free clusters starting after the next-free hint (wrapping once); does not mark them. */
  findFree(count: number): number[] {
    const out: number[] = [];
    if (count === 0) return out;
    const total = this.g.clusterCount;
    let n = this.hint + 1;
    for (let i = 0; i < total && out.length < count; i++, n++) {
      if (n > this.maxCluster) n = 2;
      if (this.get(n) === FREE) out.push(n);
    }
    if (out.length < count) {
      throw new NoSpaceError(`${this.io.name}: no space left: need ${count} clusters, ${out.length} free`);
    }
    return out;
  }

  /** Allocate a chain of `count` clusters linked in order and terminated; returns the cluster numbers. */
  allocChain(count: number, prev?: number): number[] {
    const cl = this.findFree(count);
    for (let i = 0; i < cl.length; i++) this.set(cl[i], i + 1 < cl.length ? cl[i + 1] : this.eoc);
    if (prev !== undefined && cl.length) this.set(prev, cl[0]);
    if (cl.length) {
      this.hint = cl[cl.length - 1];
      this.fsInfoDirty = true;
    }
    return cl;
  }

  /** Number of free clusters (from FSInfo when it is trustworthy, else by scanning the FAT). */
  freeClusters(): number {
    if (this.free < 0) {
      let f = 0;
      for (let n = 2; n <= this.maxCluster; n++) if (this.get(n) === FREE) f++;
      this.free = f;
    }
    return this.free;
  }

  /** Runs [first, count] of allocated (non-free) clusters, in order. FAT16/32 are scanned a page at a time. */
  *allocatedRuns(): Generator<[number, number]> {
    const width = this.g.fatType === 12 ? 0 : this.g.fatType / 8;
    let start = -1;
    for (let n = 2; n <= this.maxCluster; ) {
      // The entries of one FAT page (a FAT16/32 entry never straddles one), or FAT12's one entry.
      const p = width ? Math.floor((n * width) / PAGE) : -1;
      const pg = width ? this.page(p) : undefined;
      const end = width ? Math.min(this.maxCluster + 1, ((p + 1) * PAGE) / width) : n + 1;
      // A page of zeros (most of a new volume's FAT) is free throughout: one compare, no entry read.
      const allFree = pg !== undefined && pg.length === PAGE && pg.equals(ZERO_PAGE);
      for (; n < end; n++) {
        const v = allFree ? FREE : !pg ? this.get(n) : width === 4 ? pg.readUInt32LE(n * 4 - p * PAGE) & 0x0fffffff : pg.readUInt16LE(n * 2 - p * PAGE);
        if (v !== FREE && start < 0) start = n;
        else if (v === FREE && start >= 0) {
          yield [start, n - start];
          start = -1;
        }
      }
    }
    if (start >= 0) yield [start, this.maxCluster + 1 - start];
  }

  private writePage(p: number): void {
    const buf = this.pages.get(p);
    if (!buf) return;
    for (const f of this.g.activeFats) this.io.write(this.g.fatOffset + f * this.g.fatBytes + p * PAGE, buf);
    this.dirty.delete(p);
  }

  /** Write dirty FAT pages to every active FAT copy and update FSInfo. */
  flush(): void {
    for (const p of [...this.dirty].sort((a, b) => a - b)) this.writePage(p);
    if (this.fsInfoValid && this.fsInfoDirty) {
      const off = this.g.fsInfoSector * this.g.bytesPerSector;
      const s = Buffer.alloc(8);
      s.writeUInt32LE(this.free >= 0 ? this.free : 0xffffffff, 0);
      s.writeUInt32LE(this.hint >= 2 ? this.hint : 0xffffffff, 4);
      this.io.write(off + 488, s); // freeCount and nextFree (FSINFO bytes 488..495), nothing else
    }
    this.fsInfoDirty = false;
  }
}
