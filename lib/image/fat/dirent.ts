// FAT directory entries: the 32-byte short entry and VFAT long-name entry as pure layouts (SHORT_ENTRY,
// LFN_ENTRY), long names (UCS-2, checksums), 8.3 short-name rules (NT lowercase flags like Linux, unique ~N
// tails), and DOS date/time encoding.
import { InputError } from '../../errors.ts';
import { layout } from '../layout.ts';

/** The 32-byte short (8.3) directory entry. */
export const SHORT_ENTRY = layout('FAT short directory entry', 32, {
  name: [0, 'bytes', 11],
  attr: [11, 'u8'],
  ntRes: [12, 'u8'],
  crtTimeTenth: [13, 'u8'],
  crtTime: [14, 'u16'],
  crtDate: [16, 'u16'],
  lstAccDate: [18, 'u16'],
  clusterHi: [20, 'u16'],
  wrtTime: [22, 'u16'],
  wrtDate: [24, 'u16'],
  clusterLo: [26, 'u16'],
  fileSize: [28, 'u32'],
});
export type ShortEntry = ReturnType<typeof SHORT_ENTRY.decode>;

/** A 32-byte VFAT long-name entry: 13 UCS-2 units in three runs, the checksum of its short name. */
export const LFN_ENTRY = layout('FAT long-name entry', 32, {
  ord: [0, 'u8'],
  name1: [1, 'bytes', 10],
  attr: [11, 'u8'],
  type: [12, 'u8'],
  checksum: [13, 'u8'],
  name2: [14, 'bytes', 12],
  clusterLo: [26, 'u16'],
  name3: [28, 'bytes', 4],
});
export type LfnEntry = ReturnType<typeof LFN_ENTRY.decode>;

export const ATTR_READ_ONLY = 0x01;
export const ATTR_HIDDEN = 0x02;
export const ATTR_SYSTEM = 0x04;
export const ATTR_VOLUME = 0x08;
export const ATTR_DIR = 0x10;
export const ATTR_ARCHIVE = 0x20;
export const ATTR_LFN = 0x0f;
export const NT_LOWER_BASE = 0x08;
export const NT_LOWER_EXT = 0x10;

/** Checksum of an 11-byte short name, stored in each of its long-name entries. */
export function lfnChecksum(short11: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + short11[i]) & 0xff;
  return sum;
}

/** 'CONFIG  TXT' -> 'CONFIG.TXT' (0x05 in the first byte stands for 0xE5). */
export function shortToString(raw: Buffer, ntFlags = 0): string {
  const b = Buffer.from(raw.subarray(0, 11));
  if (b[0] === 0x05) b[0] = 0xe5;
  let base = b.toString('latin1', 0, 8).replace(/ +$/, '');
  let ext = b.toString('latin1', 8, 11).replace(/ +$/, '');
  if (ntFlags & NT_LOWER_BASE) base = base.toLowerCase();
  if (ntFlags & NT_LOWER_EXT) ext = ext.toLowerCase();
  return ext ? `${base}.${ext}` : base;
}

const SHORT_OK = /^[A-Z0-9$%'\-_@~`!(){}^#&]+$/;
const LONG_BAD = /[\x00-\x1f"*/:<>?\\|\x7f]/;

/** Reject names FAT cannot hold; returns the name unchanged. */
export function validateLongName(name: string, path: string): string {
  if (name === '' || name === '.' || name === '..') throw new InputError(`FAT path ${path}: invalid name '${name}'`);
  if (LONG_BAD.test(name)) throw new InputError(`FAT path ${path}: name '${name}' has a character FAT does not allow`, 'avoid " * / : < > ? \\ | and control characters');
  if (/[ .]$/.test(name)) throw new InputError(`FAT path ${path}: name '${name}' ends with a dot or space`, 'FAT drops trailing dots and spaces; rename the file');
  if (name.length > 255) throw new InputError(`FAT path ${path}: name is longer than 255 characters`);
  for (let i = 0; i < name.length; i++) {
    if (name.charCodeAt(i) > 0xffff) throw new InputError(`FAT path ${path}: name '${name}' has characters outside UCS-2`);
  }
  return name;
}

/**
 * If `name` can be stored as a plain 8.3 entry (each part all upper or all lower case), return the 11-byte
 * name and NT lowercase flags; otherwise null (it needs a long name).
 */
export function exactShortName(name: string): { raw: Buffer; nt: number } | null {
  const dot = name.lastIndexOf('.');
  const base = dot < 0 ? name : name.slice(0, dot);
  const ext = dot < 0 ? '' : name.slice(dot + 1);
  if (dot === 0 || base.length === 0 || base.length > 8 || ext.length > 3 || (dot >= 0 && ext.length === 0)) return null;
  const partFlag = (s: string, flag: number): number | null => {
    if (s === '') return 0;
    const up = s.toUpperCase();
    if (!SHORT_OK.test(up)) return null;
    if (s === up) return 0;
    if (s === s.toLowerCase()) return flag;
    return null; // mixed case needs a long name
  };
  const fb = partFlag(base, NT_LOWER_BASE);
  const fe = partFlag(ext, NT_LOWER_EXT);
  if (fb === null || fe === null) return null;
  const raw = Buffer.alloc(11, 0x20);
  raw.write(base.toUpperCase(), 0, 'latin1');
  raw.write(ext.toUpperCase(), 8, 'latin1');
  if (raw[0] === 0xe5) raw[0] = 0x05;
  return { raw, nt: fb | fe };
}

/**
 * Short name for a name that needs a long-name entry: the uppercase basis with invalid characters replaced, and
 * a ~N tail unless the basis is a lossless (case-only) conversion that is still free. `taken` holds existing
 * 11-byte names of the directory (latin1 strings).
 */
export function generateShortName(name: string, taken: Set<string>): Buffer {
  const clean = (s: string): [string, boolean] => {
    let lossy = false;
    let out = '';
    for (const ch of s.toUpperCase()) {
      if (ch === ' ' || ch === '.') {
        lossy = true;
        continue;
      }
      if (SHORT_OK.test(ch)) out += ch;
      else {
        out += '_';
        lossy = true;
      }
    }
    return [out, lossy];
  };
  const stripped = name.replace(/^[. ]+/, '');
  const dot = stripped.lastIndexOf('.');
  const [base0, lossyB] = clean(dot <= 0 ? stripped : stripped.slice(0, dot));
  const [ext0, lossyE] = clean(dot <= 0 ? '' : stripped.slice(dot + 1));
  let lossy = lossyB || lossyE || stripped !== name;
  const base = base0 || '_';
  if (base.length > 8 || ext0.length > 3) lossy = true;
  const ext = ext0.slice(0, 3);
  const make = (b: string): Buffer => {
    const raw = Buffer.alloc(11, 0x20);
    raw.write(b, 0, 'latin1');
    raw.write(ext, 8, 'latin1');
    if (raw[0] === 0xe5) raw[0] = 0x05;
    return raw;
  };
  if (!lossy) {
    const raw = make(base);
    if (!taken.has(raw.toString('latin1'))) return raw;
  }
  for (let i = 1; i < 1000000; i++) {
    const tail = `~${i}`;
    const raw = make(base.slice(0, 8 - tail.length) + tail);
    if (!taken.has(raw.toString('latin1'))) return raw;
  }
  throw new InputError(`FAT: no free short name for '${name}' in its directory`);
}

/** The long-name entries (in on-disk order: last part first) for `name` tied to short name `short11`. */
export function lfnEntries(name: string, short11: Buffer): Buffer[] {
  const sum = lfnChecksum(short11);
  const units: number[] = [];
  for (let i = 0; i < name.length; i++) units.push(name.charCodeAt(i));
  const n = Math.ceil(units.length / 13);
  if (units.length % 13) units.push(0);
  while (units.length < n * 13) units.push(0xffff);
  const out: Buffer[] = [];
  const run = (u: number[]) => {
    const b = Buffer.alloc(u.length * 2);
    u.forEach((x, k) => b.writeUInt16LE(x, k * 2));
    return b;
  };
  for (let seq = n; seq >= 1; seq--) {
    const part = units.slice((seq - 1) * 13, seq * 13);
    out.push(LFN_ENTRY.encode({
      ord: seq | (seq === n ? 0x40 : 0), name1: run(part.slice(0, 5)), attr: ATTR_LFN, type: 0, checksum: sum,
      name2: run(part.slice(5, 11)), clusterLo: 0, name3: run(part.slice(11, 13)),
    }));
  }
  return out;
}

/** The 13 UCS-2 units of one long-name entry. */
export function lfnUnits(e: Buffer): number[] {
  const l = LFN_ENTRY.decode(e);
  const units = (b: Buffer) => Array.from({ length: b.length / 2 }, (_, k) => b.readUInt16LE(k * 2));
  return [...units(l.name1), ...units(l.name2), ...units(l.name3)];
}

/** DOS date and time (2-second resolution, local time taken as UTC for reproducibility) plus 10 ms units. */
export function toDos(d: Date): { date: number; time: number; tenths: number } {
  let y = d.getUTCFullYear();
  if (y < 1980) return { date: (0 << 9) | (1 << 5) | 1, time: 0, tenths: 0 };
  if (y > 2107) y = 2107;
  const date = ((y - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1);
  const tenths = (d.getUTCSeconds() & 1) * 100 + Math.floor(d.getUTCMilliseconds() / 10);
  return { date, time, tenths };
}

export function fromDos(date: number, time: number, tenths = 0): Date {
  const y = 1980 + (date >> 9);
  const mo = Math.max(1, (date >> 5) & 15) - 1;
  const da = Math.max(1, date & 31);
  return new Date(Date.UTC(y, mo, da, time >> 11, (time >> 5) & 63, (time & 31) * 2, 0) + Math.min(tenths, 199) * 10);
}

/** Build a 32-byte short entry. */
export function makeShortEntry(raw11: Buffer, nt: number, attr: number, cluster: number, size: number, when: Date): Buffer {
  const t = toDos(when);
  return SHORT_ENTRY.encode({
    name: Buffer.from(raw11.subarray(0, 11)), attr, ntRes: nt, crtTimeTenth: t.tenths, crtTime: t.time, crtDate: t.date,
    lstAccDate: t.date, clusterHi: (cluster >>> 16) & 0xffff, wrtTime: t.time, wrtDate: t.date, clusterLo: cluster & 0xffff, fileSize: size >>> 0,
  });
}

export function setEntryCluster(e: Buffer, cluster: number): void {
  e.writeUInt16LE((cluster >>> 16) & 0xffff, 20);
  e.writeUInt16LE(cluster & 0xffff, 26);
}

export function setEntryMtime(e: Buffer, when: Date): void {
  const t = toDos(when);
  e.writeUInt16LE(t.time, 22);
  e.writeUInt16LE(t.date, 24);
  e.writeUInt16LE(t.date, 18);
}
