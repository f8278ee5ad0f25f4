// IPv4 arithmetic for profile validation: parse addresses and CIDRs, test membership and overlap.
// Pure functions, no I/O; the profile loader turns their failures into field-named errors.

/** Parse a dotted-quad IPv4 address to an unsigned 32-bit number, or undefined if it is not one. */
export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    if (part.length > 1 && part.startsWith('0')) return undefined; // no octal-looking octets
    const v = Number(part);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  /** The address as written (may have host bits set, e.g. a node's 10.0.0.11/24). */
  address: number;
  prefix: number;
  /** The network address (host bits cleared). */
  network: number;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse `a.b.c.d/p`, or undefined. */
export function parseCidr(s: string): Cidr | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m) return undefined;
  const address = parseIPv4(m[1]!);
  const prefix = Number(m[2]);
  if (address === undefined || prefix > 32) return undefined;
  return { address, prefix, network: (address & maskOf(prefix)) >>> 0 };
}

/** Does the network `c` contain the address `ip`? */
export function contains(c: Cidr, ip: number): boolean {
  return ((ip & maskOf(c.prefix)) >>> 0) === c.network;
}

/** Do two networks share any address? */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.network & maskOf(p)) >>> 0) === ((b.network & maskOf(p)) >>> 0);
}

/** Is `ip` the network or broadcast address of `c` (unusable as a host address for prefixes < 31)? */
export function isNetworkOrBroadcast(c: Cidr, ip: number): boolean {
  if (c.prefix >= 31) return false;
  const broadcast = (c.network | (~maskOf(c.prefix) >>> 0)) >>> 0;
  return ip === c.network || ip === broadcast;
}

/** Parse a MetalLB-style range `a.b.c.d-e.f.g.h` or a CIDR into [first, last]. */
export function parseRange(s: string): [number, number] | undefined {
  const dash = /^([0-9.]+)\s*-\s*([0-9.]+)$/.exec(s);
  if (dash) {
    const a = parseIPv4(dash[1]!);
    const b = parseIPv4(dash[2]!);
    if (a === undefined || b === undefined || a > b) return undefined;
    return [a, b];
  }
  const c = parseCidr(s);
  if (!c || c.address !== c.network) return undefined;
  return [c.network, (c.network | (~maskOf(c.prefix) >>> 0)) >>> 0];
}
