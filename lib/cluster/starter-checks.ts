// Checks of the answers `pi-image init` asks for, one answer at a time, so a wrong one is asked again at once
// instead of failing after the last question. Each returns the problem in words, or undefined when the answer
// is good. No side effects: the same rules the profile schema applies, named for a person typing.
import { existsSync, readFileSync } from 'node:fs';
import { contains, formatIPv4, isNetworkOrBroadcast, parseCidr, parseIPv4 } from './net.ts';
import { POSIX_USER, RFC1123_LABEL, SSH_KEY } from './schema.ts';

export const MAX_STARTER_NODES = 64;

export function checkClusterName(v: string): string | undefined {
  return RFC1123_LABEL.test(v) ? undefined : 'a cluster name is a-z, 0-9 and -, at most 63, not starting or ending with -';
}

export function checkRelease(v: string): string | undefined {
  return v === 'eoan' || v === 'noble' ? undefined : 'choose eoan or noble';
}

export function checkNodeCount(v: string): string | undefined {
  const n = Number(v);
  return /^\d+$/.test(v) && n >= 1 && n <= MAX_STARTER_NODES ? undefined : `give a whole number of nodes from 1 to ${MAX_STARTER_NODES}`;
}

/** The first node's address with prefix; `nodes` addresses in a row must fit in its network. */
export function checkFirstAddress(v: string, nodes = 1): string | undefined {
  const c = parseCidr(v);
  if (!c || c.prefix < 8 || c.prefix > 30) return 'give an address with its prefix, like 10.0.0.11/24 (prefix 8 to 30)';
  for (let i = 0; i < nodes; i++) {
    const ip = (c.address + i) >>> 0;
    if (!contains(c, ip) || isNetworkOrBroadcast(c, ip)) {
      return i === 0 ? `${v} is the network or broadcast address; give a host address` : `${nodes} nodes from ${v} run past the end of the network; start lower`;
    }
  }
  return undefined;
}

/** The gateway: an IPv4 address inside the first node's network, not one of the nodes. */
export function checkGateway(v: string, firstAddress: string, nodes = 1): string | undefined {
  const ip = parseIPv4(v);
  if (ip === undefined) return 'give an IPv4 address, like 10.0.0.1';
  const c = parseCidr(firstAddress);
  if (!c) return undefined;
  if (!contains(c, ip) || isNetworkOrBroadcast(c, ip)) return `${v} is not a host of the nodes' network ${formatIPv4(c.network)}/${c.prefix}`;
  if (ip >= c.address && ip < c.address + nodes) return `${v} is one of the nodes' addresses`;
  return undefined;
}

/** Comma-separated IPv4 DNS servers (at least one). */
export function checkDnsList(v: string): string | undefined {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) return 'give at least one DNS server';
  const bad = list.find((s) => parseIPv4(s) === undefined);
  return bad === undefined ? undefined : `${bad} is not an IPv4 address`;
}

export function checkUserName(v: string): string | undefined {
  if (v === 'root') return 'the admin user cannot be root';
  return POSIX_USER.test(v) ? undefined : 'a user name is a-z, 0-9, _ and -, starting with a letter or _, at most 32';
}

/** An SSH public key file (or the key text itself); empty means none. */
export function checkSshKey(v: string): string | undefined {
  if (v === '') return undefined;
  let text = v;
  if (existsSync(v)) {
    try {
      text = readFileSync(v, 'utf8').trim();
    } catch (err) {
      return `cannot read ${v}: ${(err as Error).message}`;
    }
  } else if (!/^(ssh-|ecdsa-|sk-)/.test(v)) return `${v}: no such file`;
  return SSH_KEY.test(text.split('\n')[0]!.trim()) ? undefined : `${v} does not hold an OpenSSH public key (ssh-ed25519 AAAA…); give the .pub file`;
}
