// A self-signed CA certificate in DER/PEM, encoded here (pure functions) and signed with node:crypto, so its
// validity window is ours to choose: notBefore lies before any clock a Pi can start with (it has no RTC; fixrtc
// starts it at the root fs's last mount time, systemd at least at its own build date), so kubeadm, which signs
// every certificate with the CA's notBefore, makes certificates a node with a clock years behind accepts.
// Invariants: DER is minimal (definite lengths, minimal INTEGERs); times before 2050 are UTCTime, later
// GeneralizedTime (RFC 5280 §4.1.2.5); the same key, subject, serial and window give the same bytes.
import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';

/** 2000-01-01T00:00:00Z: before any clock a first boot starts with (see docs/first-boot.md, "Clock"). */
export const CA_NOT_BEFORE = new Date(Date.UTC(2000, 0, 1));
/** The CA is valid for 100 years from its notBefore. */
export const CA_NOT_AFTER = new Date(Date.UTC(2100, 0, 1));

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const explicit = (n: number, b: Buffer) => tlv(0xa0 + n, b);
const NULL = Buffer.from([0x05, 0x00]);

/** A non-negative INTEGER from big-endian bytes (leading zeros dropped, a 0 added when the top bit is set). */
export function uint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v.length === 0) v = Buffer.from([0]);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const enc: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) enc.unshift(0x80 | (v & 0x7f));
    out.push(...enc);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime before 2050, GeneralizedTime from 2050 on, as RFC 5280 requires. */
export function time(d: Date): Buffer {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 9999) throw new Error(`certificate time ${d.toISOString()} is out of range`);
  return y < 2050 ? tlv(0x17, Buffer.from(`${p(y % 100)}${rest}`)) : tlv(0x18, Buffer.from(`${p(y, 4)}${rest}`));
}

function name(cn: string): Buffer {
  return seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
}

function ext(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

export interface CaOptions {
  /** RSA private key. */
  key: KeyObject | string;
  commonName: string;
  /** Serial number bytes (positive; 8–20 bytes). */
  serial: Buffer;
  notBefore?: Date;
  notAfter?: Date;
}

/**
 * A self-signed CA certificate (PEM): v3, sha256WithRSAEncryption, CA:TRUE (critical), keyUsage digitalSignature,
 * keyEncipherment, keyCertSign (critical), subjectKeyIdentifier = SHA-1 of the public key bits (RFC 5280 §4.2.1.2).
 */
export function selfSignedCa(o: CaOptions): string {
  const pub = createPublicKey(o.key);
  const spki = pub.export({ type: 'spki', format: 'der' });
  // SubjectPublicKeyInfo = SEQUENCE { algorithm, BIT STRING }: the key bits are the BIT STRING's content.
  const keyBits = bitStringContent(spki);
  const ski = createHash('sha1').update(keyBits).digest();
  const alg = seq(oid('1.2.840.113549.1.1.11'), NULL);
  // keyUsage bits: digitalSignature(0) keyEncipherment(2) keyCertSign(5) → 1010 0100, 2 unused bits.
  const keyUsage = tlv(0x03, Buffer.from([0x02, 0xa4]));
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))),
    uint(o.serial),
    alg,
    name(o.commonName),
    seq(time(o.notBefore ?? CA_NOT_BEFORE), time(o.notAfter ?? CA_NOT_AFTER)),
    name(o.commonName),
    Buffer.from(spki),
    explicit(3, seq(
      ext('2.5.29.19', true, seq(bool(true))),
      ext('2.5.29.15', true, keyUsage),
      ext('2.5.29.14', false, octets(ski)),
    )),
  );
  const sig = sign('sha256', tbs, o.key);
  const der = seq(tbs, alg, bits(sig));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

/** The content (after the unused-bits byte) of the BIT STRING that ends a DER SubjectPublicKeyInfo. */
function bitStringContent(spki: Buffer): Buffer {
  const [, outerStart] = header(spki, 0);
  const [algLen, algStart] = header(spki, outerStart);
  const bsAt = algStart + algLen;
  if (spki[bsAt] !== 0x03) throw new Error('SubjectPublicKeyInfo without a BIT STRING');
  const [bsLen, bsStart] = header(spki, bsAt);
  return spki.subarray(bsStart + 1, bsStart + bsLen);
}

/** [content length, content offset] of the DER element at `at`. */
function header(b: Buffer, at: number): [number, number] {
  const first = b[at + 1]!;
  if (first < 0x80) return [first, at + 2];
  const n = first & 0x7f;
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[at + 2 + i]!;
  return [v, at + 2 + n];
}
