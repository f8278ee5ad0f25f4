// A set of byte strings (package names) held in one growing buffer and found by hash, each an entry number: the
// 60 000 names of a Packages index without a JS string, Map entry or object apiece. Pure; no I/O.
// Invariants: an entry number never changes once given (0, 1, 2, … in the order added); the same bytes always give
// the same entry; lookups by JS string compare its UTF-8 bytes.

/** FNV-1a over buf[a, b). */
function hash(buf: Uint8Array, a: number, b: number): number {
  let h = 0x811c9dc5;
  for (let i = a; i < b; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return h >>> 0;
}

export class NameTable {
  private pool = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  private starts = new Uint32Array(1024);
  private ends = new Uint32Array(1024);
  /** Open addressing: entry + 1, 0 for an empty slot. */
  private slots = new Int32Array(2048);
  size = 0;

  /** The entry of the bytes buf[a, b), added when they are new. */
  add(buf: Uint8Array, a: number, b: number): number {
    const h = hash(buf, a, b);
    const found = this.lookup(buf, a, b, h);
    if (found >= 0) return found;
    const len = b - a;
    if (this.used + len > this.pool.length) {
      const p = Buffer.allocUnsafe(Math.max(this.pool.length * 2, this.used + len));
      this.pool.copy(p, 0, 0, this.used);
      this.pool = p;
    }
    if (this.size === this.starts.length) {
      const s = new Uint32Array(this.size * 2);
      s.set(this.starts);
      this.starts = s;
      const e = new Uint32Array(this.size * 2);
      e.set(this.ends);
      this.ends = e;
    }
    const pool = this.pool;
    for (let i = 0; i < len; i++) pool[this.used + i] = buf[a + i];
    const entry = this.size++;
    this.starts[entry] = this.used;
    this.ends[entry] = this.used + len;
    this.used += len;
    if (this.size * 2 > this.slots.length) this.rehash();
    else this.place(entry, h);
    return entry;
  }

  /** The entry of a name, or -1. */
  find(name: string): number {
    const b = Buffer.from(name, 'utf8');
    return this.lookup(b, 0, b.length, hash(b, 0, b.length));
  }

  /** An entry's name. */
  text(entry: number): string {
    return this.pool.toString('utf8', this.starts[entry], this.ends[entry]);
  }

  private lookup(buf: Uint8Array, a: number, b: number, h: number): number {
    const mask = this.slots.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = this.slots[i] - 1;
      if (e < 0) return -1;
      const s = this.starts[e];
      if (this.ends[e] - s !== b - a) continue;
      let j = 0;
      while (j < b - a && this.pool[s + j] === buf[a + j]) j++;
      if (j === b - a) return e;
    }
  }

  private place(entry: number, h: number): void {
    const mask = this.slots.length - 1;
    let i = h & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = entry + 1;
  }

  private rehash(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    for (let e = 0; e < this.size; e++) this.place(e, hash(this.pool, this.starts[e], this.ends[e]));
  }
}
