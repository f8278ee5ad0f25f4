// A node's bundle: its role's share of the lock as one plain ustar archive, written raw as partition 2 of its SSD
// image (type 0xda, right after the root). First boot reads it with tar straight from the block device.
//
// Layout of the archive, in this order:
// - pi-image-bundle/index.tsv: kind, sha256, size, member, source. Source is the URL the profile names, so the
//   first-boot script finds a download in the bundle by the URL it would have fetched.
// - files/<id>, then images/<ref>.tar (image-archive.ts).
// - debs/: the role's .debs under the names apt's archive cache gives them, then the local repository's
//   SHA256SUMS and Packages (bundle-repo.ts; kind apt).
//
// Invariants: the tar is produced synchronously in chunks (ustarHeader is a pure encoder), so the SSD writer
// streams it into the image with constant memory.
import { closeSync, openSync, readSync } from 'node:fs';
import type { Lock, Role } from './lockfile.ts';
import { packageId } from './package-id.ts';
import type { BlobStore } from './store.ts';
import type { ImageArchive } from './image-archive.ts';
import { bundleDebName, bundlePackagesFile, bundleSha256Sums } from './apt/bundle-repo.ts';
import { InputError, VerifyError } from '../errors.ts';

export const BUNDLE_DIR = 'pi-image-bundle';
export const BUNDLE_PARTITION_TYPE = 0xda;

export interface BundleItem {
  kind: 'file' | 'image' | 'deb' | 'apt';
  /** Member name in the bundle tar. */
  name: string;
  /** Where the bytes are on this machine (or `data`: the bytes themselves, for the small index files). */
  path: string;
  data?: Buffer;
  size: number;
  sha256: string;
  /** What it stands for: the profile's URL (URL#member for a member), the image reference, or the package id. */
  source: string;
}

export interface BundlePlan {
  role: Role;
  items: BundleItem[];
  /** index.tsv's text. */
  index: string;
  /** Bytes of the whole tar. */
  size: number;
  /**
   * sha256 of what makes the tar's bytes (the format and index.tsv, which names every member with its sha256 and
   * size): two plans with the same key give the same bytes, so an image's checksums can be remembered by it.
   */
  key: string;
}

/** Bump when bundleChunks lays the same plan out differently. */
const TAR_FORMAT = 1;

import { createHash } from 'node:crypto';

/** A member name part: safe characters, at most 90 of them (ustar keeps 100 for the base name). */
const safe = (s: string) => {
  const t = s.replace(/[^A-Za-z0-9._+-]+/g, '_');
  return t.length <= 90 ? t : `${t.slice(0, 70)}-${createHash('sha256').update(s).digest('hex').slice(0, 12)}`;
};
const pad512 = (n: number) => (512 - (n % 512)) % 512;

export function planBundle(lock: Lock, role: Role, store: BlobStore, archives: Map<string, ImageArchive>): BundlePlan {
  const r = lock.roles[role];
  const items: BundleItem[] = [];
  for (const f of lock.files.filter((x) => r.files.includes(x.id))) {
    items.push({ kind: 'file', name: `${BUNDLE_DIR}/files/${safe(f.id)}`, path: store.path(f.sha256), size: f.size, sha256: f.sha256, source: f.member ? `${f.url}#${f.member}` : f.url });
  }
  for (const i of lock.images.filter((x) => r.images.includes(x.id))) {
    const a = archives.get(i.id);
    if (!a) throw new Error(`planBundle: no archive made for ${i.id}`);
    items.push({ kind: 'image', name: `${BUNDLE_DIR}/images/${safe(i.id)}.tar`, path: a.path, size: a.size, sha256: a.sha256, source: i.id });
  }
  const debs = lock.packages.filter((x) => r.packages.includes(packageId(x))).map((p) => ({ ...p, control: p.control ?? {} }));
  for (const p of debs) {
    items.push({ kind: 'deb', name: `${BUNDLE_DIR}/debs/${bundleDebName(p)}`, path: store.path(p.sha256), size: p.size, sha256: p.sha256, source: packageId(p) });
  }
  if (debs.length) {
    for (const [file, text] of [['SHA256SUMS', bundleSha256Sums(debs)], ['Packages', bundlePackagesFile(debs)]] as const) {
      const data = Buffer.from(text);
      items.push({ kind: 'apt', name: `${BUNDLE_DIR}/debs/${file}`, path: '', data, size: data.length, sha256: createHash('sha256').update(data).digest('hex'), source: `apt ${file}` });
    }
  }
  const index = ['# pi-image bundle index: kind sha256 size member source', ...items.map((i) => [i.kind, i.sha256, i.size, i.name, i.source].join('\t'))].join('\n') + '\n';
  const indexBytes = Buffer.byteLength(index);
  const size = 512 + indexBytes + pad512(indexBytes) + items.reduce((s, i) => s + 512 + i.size + pad512(i.size), 0) + 1024;
  const key = createHash('sha256').update(`pi-image bundle tar ${TAR_FORMAT}\n${index}`).digest('hex');
  return { role, items, index, size, key };
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar header for a regular file (names up to 255 bytes via the prefix field). */
export function ustarHeader(name: string, size: number, mtime = 0, mode = 0o644): Buffer {
  const h = Buffer.alloc(512);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new InputError(`bundle member ${name}: the name is too long for a ustar archive (at most 155 + 100 bytes, split at a /)`, 'use a shorter path in the profile');
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  if (size > 0o77777777777) throw new InputError(`bundle member ${name}: ${size} bytes is too large for a ustar archive (at most 8 GiB)`);
  h.write(base, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

const CHUNK = 1 << 20;

/**
 * The bundle tar's bytes in order, in chunks of at most 1 MiB, reading each item's file as it goes. A chunk is a
 * view of a reused buffer: use it before asking for the next.
 */
export function* bundleChunks(plan: BundlePlan, mtime = 0): Generator<Buffer> {
  const index = Buffer.from(plan.index);
  yield ustarHeader(`${BUNDLE_DIR}/index.tsv`, index.length, mtime);
  yield Buffer.concat([index, Buffer.alloc(pad512(index.length))]);
  const buf = Buffer.allocUnsafe(CHUNK);
  for (const it of plan.items) {
    yield ustarHeader(it.name, it.size, mtime);
    if (it.data) {
      yield it.data;
      if (pad512(it.size)) yield Buffer.alloc(pad512(it.size));
      continue;
    }
    const fd = openSync(it.path, 'r');
    try {
      let off = 0;
      while (off < it.size) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, it.size - off), off);
        if (n === 0) throw new VerifyError(`${it.path}: shorter than the ${it.size} bytes the lock names`, 'remove it from the cache and build again (it is fetched again)');
        off += n;
        yield buf.subarray(0, n);
      }
    } finally {
      closeSync(fd);
    }
    if (pad512(it.size)) yield Buffer.alloc(pad512(it.size));
  }
  yield Buffer.alloc(1024);
}
