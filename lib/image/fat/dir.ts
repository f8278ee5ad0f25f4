// One FAT directory loaded into memory (directories are small: at most 65536 entries): parsing its short and
// long-name entries, finding free slots (growing a cluster-chained directory), writing and deleting entry sets.
import { CorruptImageError } from '../../errors.ts';
import type { BlockIO } from '../io.ts';
import type { FatGeometry } from './bpb.ts';
import type { FatTable } from './table.ts';
import { NoSpaceError } from './errors.ts';
import { ATTR_DIR, ATTR_LFN, ATTR_VOLUME, SHORT_ENTRY, fromDos, lfnChecksum, lfnUnits, shortToString } from './dirent.ts';

export interface FatEntry {
  /** Long name, or the short name with the NT lowercase flags applied. */
  name: string;
  /** 8.3 name as stored, e.g. 'CONFIG.TXT'. */
  shortName: string;
  isDirectory: boolean;
  size: number;
  firstCluster: number;
  mtime: Date;
  attributes: number;
}

/** A parsed entry plus where it lives, so it can be updated or deleted. */
export interface DirSlotEntry extends FatEntry {
  /** Slot index of the short entry. */
  slot: number;
  /** Slot index of the first long-name entry (== slot when there is none). */
  firstSlot: number;
  /** The 11 raw short-name bytes as a latin1 string (for uniqueness checks). */
  raw11: string;
  /** Image byte offset of the short entry (for error messages). */
  where: number;
}

const MAX_DIR_BYTES = 65536 * 32;

export class FatDir {
  /** Volume byte offset of each segment (a cluster, or the whole fixed root region). */
  private segs: number[] = [];
  private segSize: number;
  buf: Buffer;
  entries: DirSlotEntry[] = [];
  volumeLabel?: string;

  constructor(
    private readonly io: BlockIO,
    private readonly g: FatGeometry,
    private readonly fat: FatTable,
    /** First cluster, or 0 for the FAT12/16 fixed root directory. */
    readonly cluster: number,
    where: number,
  ) {
    if (cluster === 0) {
      this.segSize = g.rootDirBytes;
      this.segs = [g.rootDirOffset];
      this.buf = io.read(g.rootDirOffset, g.rootDirBytes);
    } else {
      this.segSize = g.clusterSize;
      const parts: Buffer[] = [];
      for (const c of fat.chain(cluster, where)) {
        if (this.segs.length * g.clusterSize >= MAX_DIR_BYTES) {
          throw new CorruptImageError(`${io.name}: directory at cluster ${cluster} is larger than FAT allows`, fat.entryOffset(c));
        }
        const off = this.clusterOffset(c);
        this.segs.push(off);
        parts.push(io.read(off, g.clusterSize));
      }
      this.buf = Buffer.concat(parts);
    }
    this.parse();
  }

  get isFixedRoot(): boolean {
    return this.cluster === 0;
  }

  clusterOffset(c: number): number {
    return this.g.dataOffset + (c - 2) * this.g.clusterSize;
  }

  get slotCount(): number {
    return this.buf.length / 32;
  }

  slotOffset(i: number): number {
    const b = i * 32;
    return this.segs[Math.floor(b / this.segSize)] + (b % this.segSize);
  }

  private parse(): void {
    this.entries = [];
    let lfn: { units: number[][]; sum: number; count: number; next: number; first: number } | null = null;
    for (let i = 0; i < this.slotCount; i++) {
      const e = this.buf.subarray(i * 32, i * 32 + 32);
      if (e[0] === 0x00) break;
      if (e[0] === 0xe5) {
        lfn = null;
        continue;
      }
      const attr = e[11];
      if ((attr & 0x3f) === ATTR_LFN) {
        const ord = e[0] & 0x1f;
        if (e[0] & 0x40) {
          lfn = ord >= 1 && ord <= 20 ? { units: [], sum: e[13], count: ord, next: ord, first: i } : null;
        }
        if (lfn && ord === lfn.next && e[13] === lfn.sum) {
          lfn.units[ord - 1] = lfnUnits(e);
          lfn.next--;
        } else lfn = null;
        continue;
      }
      const raw11 = Buffer.from(e.subarray(0, 11));
      if (attr & ATTR_VOLUME && !(attr & ATTR_DIR)) {
        if (this.isFixedRoot || this.cluster === this.g.rootCluster) this.volumeLabel = raw11.toString('latin1').replace(/ +$/, '');
        lfn = null;
        continue;
      }
      const shortName = shortToString(raw11);
      let name = shortToString(raw11, e[12]);
      let firstSlot = i;
      if (lfn && lfn.next === 0 && lfnChecksum(raw11) === lfn.sum) {
        const units = lfn.units.flat();
        const end = units.indexOf(0);
        name = String.fromCharCode(...(end >= 0 ? units.slice(0, end) : units));
        firstSlot = lfn.first;
      }
      lfn = null;
      const se = SHORT_ENTRY.decode(e);
      const isDirectory = (attr & ATTR_DIR) !== 0;
      const clusterHi = this.g.fatType === 32 ? se.clusterHi : 0;
      const firstCluster = ((clusterHi << 16) | se.clusterLo) >>> 0;
      const size = isDirectory ? 0 : se.fileSize;
      const where = this.io.base + this.slotOffset(i);
      const isDot = shortName === '.' || shortName === '..';
      if (!isDot) {
        if (firstCluster !== 0 && (firstCluster < 2 || firstCluster > this.fat.maxCluster)) {
          throw new CorruptImageError(
            `${this.io.name}: directory entry '${name}' points to cluster ${firstCluster}, outside 2..${this.fat.maxCluster}`,
            where,
          );
        }
        if (firstCluster === 0 && (isDirectory || size > 0)) {
          throw new CorruptImageError(`${this.io.name}: directory entry '${name}' has ${isDirectory ? 'a directory' : `${size} bytes`} but no cluster`, where);
        }
        if (size > this.g.clusterCount * this.g.clusterSize) {
          throw new CorruptImageError(`${this.io.name}: file '${name}' claims ${size} bytes, more than the volume holds`, where);
        }
      }
      this.entries.push({
        name,
        shortName,
        isDirectory,
        size,
        firstCluster,
        mtime: fromDos(se.wrtDate, se.wrtTime),
        attributes: attr,
        slot: i,
        firstSlot,
        raw11: raw11.toString('latin1'),
        where,
      });
    }
  }

  /** Entries other than '.' and '..'. */
  list(): DirSlotEntry[] {
    return this.entries.filter((e) => e.shortName !== '.' && e.shortName !== '..');
  }

  find(name: string): DirSlotEntry | undefined {
    const up = name.toUpperCase();
    return this.list().find((e) => e.name.toUpperCase() === up || e.shortName === up);
  }

  takenShortNames(): Set<string> {
    return new Set(this.entries.map((e) => e.raw11));
  }

  /** Write one 32-byte slot (in memory and on disk). */
  writeSlot(i: number, data: Buffer): void {
    data.copy(this.buf, i * 32, 0, 32);
    this.io.write(this.slotOffset(i), data.subarray(0, 32));
  }

  /** Find `n` consecutive free slots, growing the directory by zeroed clusters when needed; returns the first. */
  allocSlots(n: number): number {
    for (;;) {
      let run = 0;
      for (let i = 0; i < this.slotCount; i++) {
        const b = this.buf[i * 32];
        if (b === 0x00 || b === 0xe5) {
          run++;
          if (run === n) return i - n + 1;
        } else run = 0;
      }
      if (this.isFixedRoot) {
        throw new NoSpaceError(`${this.io.name}: the FAT${this.g.fatType} root directory is full (${this.slotCount} entries)`, 'put files in a subdirectory');
      }
      if (this.buf.length + this.g.clusterSize > MAX_DIR_BYTES) {
        throw new NoSpaceError(`${this.io.name}: directory at cluster ${this.cluster} has reached the FAT limit of 65536 entries`);
      }
      const [c] = this.fat.allocChain(1, this.lastCluster());
      const off = this.clusterOffset(c);
      const zero = Buffer.alloc(this.g.clusterSize);
      this.io.write(off, zero);
      this.segs.push(off);
      this.buf = Buffer.concat([this.buf, zero]);
    }
  }

  private lastCluster(): number {
    const off = this.segs[this.segs.length - 1];
    return (off - this.g.dataOffset) / this.g.clusterSize + 2;
  }

  /** Write an entry set (long-name entries then the short entry); returns the short entry's slot. */
  addEntries(set: Buffer[]): number {
    const first = this.allocSlots(set.length);
    set.forEach((e, k) => this.writeSlot(first + k, e));
    this.parse();
    return first + set.length - 1;
  }

  /** Mark an entry and its long-name entries deleted. */
  remove(e: DirSlotEntry): void {
    for (let i = e.firstSlot; i <= e.slot; i++) {
      const s = Buffer.from(this.buf.subarray(i * 32, i * 32 + 32));
      s[0] = 0xe5;
      this.writeSlot(i, s);
    }
    this.parse();
  }

  /** The raw 32 bytes of a slot (a copy). */
  slotBytes(i: number): Buffer {
    return Buffer.from(this.buf.subarray(i * 32, i * 32 + 32));
  }
}
