// Fixed binary layouts: a table of little-endian fields (name -> offset, kind) that gives a pure `decode(buf, at)`
// and `encode(value)` over one structure, the way tar-stream's headers.js does for a tar header.
// Invariants:
// - no I/O: callers read the bytes and hand them over; errors name offsets, never files;
// - a layout covers its bytes exactly once (checked when it is defined): encode(decode(b)) == b for any b;
// - u8/u16/u32 and u48/u64 (below 2^53) decode to numbers, u64n to bigint, bytes to a copy of the bytes.

export type FieldKind = 'u8' | 'u16' | 'u32' | 'u64' | 'u64n' | 'i32';
export type Field = readonly [offset: number, kind: FieldKind] | readonly [offset: number, kind: 'bytes', length: number];

type ValueOf<F extends Field> = F[1] extends 'bytes' ? Buffer : F[1] extends 'u64n' ? bigint : number;
export type Decoded<T extends Record<string, Field>> = { -readonly [K in keyof T]: ValueOf<T[K]> };

export interface Layout<T> {
  readonly size: number;
  /** Decode the structure that starts at `at` in `buf` (copies byte fields, so `buf` may be reused). */
  decode(buf: Uint8Array, at?: number): T;
  /** Encode into a new buffer of `size` bytes, or into `into` at `at`. */
  encode(value: T, into?: Buffer, at?: number): Buffer;
}

const WIDTH: Record<FieldKind, number> = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8, u64n: 8 };

function fieldLength(f: Field): number {
  return f[1] === 'bytes' ? (f as readonly [number, 'bytes', number])[2] : WIDTH[f[1]];
}

/** Define a layout of `size` bytes; throws (a programming error) when fields overlap or leave a byte uncovered. */
export function layout<const T extends Record<string, Field>>(name: string, size: number, fields: T): Layout<Decoded<T>> {
  const entries = Object.entries(fields).sort((a, b) => a[1][0] - b[1][0]);
  let next = 0;
  for (const [key, f] of entries) {
    if (f[0] !== next) throw new Error(`layout ${name}: field ${key} at ${f[0]}, expected ${next} (gap or overlap)`);
    next = f[0] + fieldLength(f);
  }
  if (next !== size) throw new Error(`layout ${name}: fields end at ${next}, size is ${size}`);
  return {
    size,
    decode(input: Uint8Array, at = 0): Decoded<T> {
      const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
      if (at < 0 || at + size > buf.length) throw new RangeError(`layout ${name}: ${size} bytes at ${at} do not fit in ${buf.length}`);
      const out: Record<string, unknown> = {};
      for (const [key, f] of entries) {
        const o = at + f[0];
        switch (f[1]) {
          case 'u8': out[key] = buf[o]; break;
          case 'u16': out[key] = buf.readUInt16LE(o); break;
          case 'u32': out[key] = buf.readUInt32LE(o); break;
          case 'i32': out[key] = buf.readInt32LE(o); break;
          case 'u64': out[key] = buf.readUInt32LE(o) + buf.readUInt32LE(o + 4) * 2 ** 32; break;
          case 'u64n': out[key] = buf.readBigUInt64LE(o); break;
          case 'bytes': out[key] = Buffer.from(buf.subarray(o, o + fieldLength(f))); break;
        }
      }
      return out as Decoded<T>;
    },
    encode(value: Decoded<T>, into?: Buffer, at = 0): Buffer {
      const buf = into ?? Buffer.alloc(size);
      const v = value as Record<string, unknown>;
      for (const [key, f] of entries) {
        const o = at + f[0];
        const x = v[key];
        switch (f[1]) {
          case 'u8': buf[o] = x as number; break;
          case 'u16': buf.writeUInt16LE(x as number, o); break;
          case 'u32': buf.writeUInt32LE(x as number, o); break;
          case 'i32': buf.writeInt32LE(x as number, o); break;
          case 'u64':
            buf.writeUInt32LE((x as number) % 2 ** 32, o);
            buf.writeUInt32LE(Math.floor((x as number) / 2 ** 32), o + 4);
            break;
          case 'u64n': buf.writeBigUInt64LE(x as bigint, o); break;
          case 'bytes': {
            const b = x as Uint8Array;
            const n = fieldLength(f);
            if (b.length !== n) throw new RangeError(`layout ${name}: field ${key} needs ${n} bytes, got ${b.length}`);
            buf.set(b, o);
            break;
          }
        }
      }
      return buf;
    },
  };
}
