// Block maps in bmaptool's XML format: which blocks of an image hold data, with a checksum per range, so a flash
// writes (and verifies) only those. We write version 2.0 with sha256; we read 1.x and 2.0 files made by bmaptool.
import { createHash } from 'node:crypto';
import { writeFileSync, renameSync, rmSync } from 'node:fs';
import { CorruptImageError, InputError } from '../errors.ts';
import { forEachDataRun, type ByteRange } from './sparse.ts';
import { dataExtents } from './extents.ts';
import { FileIO, type BlockIO } from './io.ts';
import type { OnProgress } from '../progress.ts';

export interface BmapRange {
  /** First and last block, inclusive (bmaptool's convention). */
  first: number;
  last: number;
  /** Hex digest of the range's bytes (the last range stops at the image size). */
  checksum?: string;
}

export interface Bmap {
  version: string;
  imageSize: number;
  blockSize: number;
  blocksCount: number;
  mappedBlocksCount: number;
  /** 'sha256' for ours; 'sha1' for 1.3 files; whatever a 2.0 file names; 'none' before 1.3. */
  checksumType: string;
  ranges: BmapRange[];
}

const CHUNK = 4 << 20;

function humanSize(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} bytes` : `${v.toFixed(1)} ${units[i]}`;
}

/** Byte range of a block range within an image of `imageSize` bytes. */
export function blockRangeBytes(r: BmapRange, blockSize: number, imageSize: number): ByteRange {
  const start = r.first * blockSize;
  return { start, length: Math.min(imageSize, (r.last + 1) * blockSize) - start };
}

/** The mapped byte ranges of a bmap, clipped to the image size. */
export function bmapByteRanges(b: Pick<Bmap, 'ranges' | 'blockSize' | 'imageSize'>): ByteRange[] {
  return b.ranges.map((r) => blockRangeBytes(r, b.blockSize, b.imageSize));
}

/** Turn byte ranges into sorted, merged block ranges clipped to the image. */
export function toBlockRanges(ranges: readonly ByteRange[], blockSize: number, imageSize: number): BmapRange[] {
  const lastBlock = Math.ceil(imageSize / blockSize) - 1;
  const blocks = ranges
    .filter((r) => r.length > 0 && r.start < imageSize)
    .map((r) => ({ first: Math.floor(r.start / blockSize), last: Math.min(lastBlock, Math.ceil((r.start + r.length) / blockSize) - 1) }))
    .sort((a, b) => a.first - b.first);
  const out: BmapRange[] = [];
  for (const b of blocks) {
    const prev = out[out.length - 1];
    if (prev && b.first <= prev.last + 1) prev.last = Math.max(prev.last, b.last);
    else out.push(b);
  }
  return out;
}

/** The bmap XML text (bmaptool 2.0 layout, comments included) with its BmapFileChecksum filled in. */
export function renderBmap(b: { imageSize: number; blockSize: number; ranges: BmapRange[]; checksumType?: string }): string {
  const cs = b.checksumType ?? 'sha256';
  const blocksCount = Math.ceil(b.imageSize / b.blockSize);
  const mapped = b.ranges.reduce((s, r) => s + r.last - r.first + 1, 0);
  const digestLen = createHash(cs).digest('hex').length;
  const pct = blocksCount === 0 ? 0 : (mapped * 100) / blocksCount;
  const lines = [
    '<?xml version="1.0" ?>',
    '<!-- This file contains the block map for an image file, which is basically',
    '     a list of useful (mapped) block numbers in the image file. In other words,',
    '     it lists only those blocks which contain data (boot sector, partition',
    '     table, file-system metadata, files, directories, extents, etc). These',
    '     blocks have to be copied to the target device. The other blocks do not',
    '     contain any useful data and do not have to be copied to the target',
    '     device. Written by pi-image. -->',
    '',
    '<bmap version="2.0">',
    `    <!-- Image size in bytes: ${humanSize(b.imageSize)} -->`,
    `    <ImageSize> ${b.imageSize} </ImageSize>`,
    '',
    '    <!-- Size of a block in bytes -->',
    `    <BlockSize> ${b.blockSize} </BlockSize>`,
    '',
    '    <!-- Count of blocks in the image file -->',
    `    <BlocksCount> ${blocksCount} </BlocksCount>`,
    '',
    `    <!-- Count of mapped blocks: ${humanSize(mapped * b.blockSize)} or ${pct.toFixed(1)}% -->`,
    `    <MappedBlocksCount> ${mapped} </MappedBlocksCount>`,
    '',
    '    <!-- Type of checksum used in this file -->',
    `    <ChecksumType> ${cs} </ChecksumType>`,
    '',
    '    <!-- The checksum of this bmap file. When it is calculated, the value of',
    '         the checksum has be zero (all ASCII "0" symbols).  -->',
    `    <BmapFileChecksum> ${'0'.repeat(digestLen)} </BmapFileChecksum>`,
    '',
    '    <!-- The block map which consists of elements which may either be a',
    "         range of blocks or a single block. The 'chksum' attribute",
    '         (if present) is the checksum of this blocks range. -->',
    '    <BlockMap>',
    ...b.ranges.map((r) => {
      const attr = r.checksum ? ` chksum="${r.checksum}"` : '';
      return `        <Range${attr}> ${r.first === r.last ? r.first : `${r.first}-${r.last}`} </Range>`;
    }),
    '    </BlockMap>',
    '</bmap>',
    '',
  ];
  const text = lines.join('\n');
  // bmaptool: the file checksum is taken over the whole file with the checksum field all ASCII zeros.
  const sum = createHash(cs).update(text).digest('hex');
  return text.replace(`<BmapFileChecksum> ${'0'.repeat(digestLen)} <`, `<BmapFileChecksum> ${sum} <`);
}

/** Hash each block range of an open image, streaming with one buffer. */
export function hashBlockRanges(
  io: BlockIO,
  ranges: BmapRange[],
  blockSize: number,
  imageSize: number,
  opts: { checksumType?: string; onProgress?: OnProgress; detail?: string } = {},
): BmapRange[] {
  const buf = Buffer.allocUnsafe(CHUNK);
  const total = ranges.reduce((s, r) => s + blockRangeBytes(r, blockSize, imageSize).length, 0);
  let done = 0;
  return ranges.map((r) => {
    const { start, length } = blockRangeBytes(r, blockSize, imageSize);
    const h = createHash(opts.checksumType ?? 'sha256');
    for (let off = start; off < start + length; ) {
      const view = buf.subarray(0, Math.min(CHUNK, start + length - off));
      io.readInto(view, off);
      h.update(view);
      off += view.length;
      done += view.length;
      opts.onProgress?.({ phase: 'bmap', done, total, unit: 'bytes', detail: opts.detail });
    }
    return { first: r.first, last: r.last, checksum: h.digest('hex') };
  });
}

/**
 * One pass over an image: find its non-zero blocks and hash each run of them. Only the file's data extents are
 * read (extents.ts); holes are skipped unread.
 */
export function scanAndHash(
  io: FileIO,
  imageSize: number,
  blockSize: number,
  opts: { onProgress?: OnProgress; detail?: string } = {},
): BmapRange[] {
  const chunk = Math.max(blockSize, Math.floor(CHUNK / blockSize) * blockSize);
  const buf = Buffer.allocUnsafe(chunk);
  const out: BmapRange[] = [];
  let cur: { first: number; last: number; hash: ReturnType<typeof createHash> } | undefined;
  const close = () => {
    if (cur) out.push({ first: cur.first, last: cur.last, checksum: cur.hash.digest('hex') });
    cur = undefined;
  };
  const extents = dataExtents(io.name, { blockSize, size: imageSize }) ?? [{ start: 0, length: imageSize }];
  for (const x of extents) {
    close(); // extents are disjoint and apart: a hole lies between them
    for (let pos = x.start; pos < x.start + x.length; ) {
      const view = buf.subarray(0, Math.min(chunk, x.start + x.length - pos));
      io.readInto(view, pos);
      let covered = 0; // bytes of this chunk accounted for (data runs hashed, zero gaps closing runs)
      forEachDataRun(view, blockSize, (s, e) => {
        if (s > covered) close();
        const first = (pos + s) / blockSize;
        if (!cur) cur = { first, last: first, hash: createHash('sha256') };
        cur.hash.update(view.subarray(s, e));
        cur.last = Math.ceil((pos + e) / blockSize) - 1;
        covered = e;
      });
      if (covered < view.length) close();
      pos += view.length;
      opts.onProgress?.({ phase: 'scan', done: pos, total: imageSize, unit: 'bytes', detail: opts.detail });
    }
  }
  close();
  return out;
}

/**
 * Make the bmap of `imagePath`. With `ranges` (byte ranges known to hold data, e.g. from filesystem maps) those
 * blocks are mapped and hashed; without, the image is scanned for non-zero blocks.
 */
export async function createBmap(
  imagePath: string,
  ranges?: readonly ByteRange[],
  opts: { blockSize?: number; onProgress?: OnProgress; detail?: string } = {},
): Promise<string> {
  const blockSize = opts.blockSize ?? 4096;
  const io = FileIO.open(imagePath);
  try {
    const imageSize = io.size;
    const hashed = ranges
      ? hashBlockRanges(io, toBlockRanges(ranges, blockSize, imageSize), blockSize, imageSize, opts)
      : scanAndHash(io, imageSize, blockSize, opts);
    return renderBmap({ imageSize, blockSize, ranges: hashed });
  } finally {
    io.close();
  }
}

/** Write the bmap of `imagePath` to `bmapPath` (under a temporary name, renamed when complete). */
export async function writeBmapFile(
  imagePath: string,
  bmapPath: string,
  ranges?: readonly ByteRange[],
  opts: { blockSize?: number; onProgress?: OnProgress; detail?: string } = {},
): Promise<void> {
  const xml = await createBmap(imagePath, ranges, opts);
  const tmp = `${bmapPath}.partial-${process.pid}`;
  try {
    writeFileSync(tmp, xml);
    renameSync(tmp, bmapPath);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(xml);
  return m?.[1];
}

function intTag(xml: string, name: string, where: string): number {
  const v = tag(xml, name);
  if (v === undefined || !/^\d+$/.test(v)) throw new InputError(`${where}: bmap field <${name}> is missing or not a number (${v ?? 'absent'})`);
  return Number(v);
}

/**
 * Parse a bmap file (bmaptool format 1.0–1.4 and 2.x). Checks the counts against each other and, when the file
 * carries one, its own checksum. `where` names the file in errors.
 */
export function parseBmap(xml: string, where = 'bmap'): Bmap {
  const text = xml.replace(/<!--[\s\S]*?-->/g, '');
  const root = /<bmap\s+version\s*=\s*"(\d+)\.(\d+)"\s*>/.exec(text);
  if (!root) throw new InputError(`${where}: not a bmap file (no <bmap version="…"> element)`, 'Give a .bmap file made by pi-image or bmaptool create.');
  const major = Number(root[1]);
  const minor = Number(root[2]);
  if (major > 2) throw new InputError(`${where}: bmap format version ${major}.${minor} is newer than we support (2.x)`);
  const imageSize = intTag(text, 'ImageSize', where);
  const blockSize = intTag(text, 'BlockSize', where);
  const blocksCount = intTag(text, 'BlocksCount', where);
  const mappedBlocksCount = intTag(text, 'MappedBlocksCount', where);
  if (blockSize <= 0) throw new InputError(`${where}: <BlockSize> must be positive`);
  if (blocksCount !== Math.ceil(imageSize / blockSize)) {
    throw new InputError(`${where}: inconsistent bmap: ImageSize ${imageSize} is not ${blocksCount} blocks of ${blockSize} bytes`);
  }
  let checksumType = 'none';
  let attr: string | undefined;
  let fileSumTag: string | undefined;
  if (major >= 2 || (major === 1 && minor === 4)) {
    checksumType = (tag(text, 'ChecksumType') ?? '').toLowerCase();
    if (!checksumType) throw new InputError(`${where}: bmap ${major}.${minor} lacks <ChecksumType>`);
    attr = 'chksum';
    fileSumTag = 'BmapFileChecksum';
  } else if (major === 1 && minor === 3) {
    checksumType = 'sha1';
    attr = 'sha1';
    fileSumTag = 'BmapFileSHA1';
  }
  const mapStart = text.indexOf('<BlockMap>');
  const mapEnd = text.indexOf('</BlockMap>');
  if (mapStart < 0 || mapEnd < mapStart) throw new InputError(`${where}: bmap has no <BlockMap> element`);
  const ranges: BmapRange[] = [];
  const re = /<Range([^>]*)>\s*([^<]*?)\s*<\/Range>/g;
  const body = text.slice(mapStart, mapEnd);
  let mapped = 0;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    const span = /^(\d+)\s*(?:-\s*(\d+))?$/.exec(m[2]);
    if (!span) throw new InputError(`${where}: bad <Range> "${m[2]}"`);
    const first = Number(span[1]);
    const last = span[2] === undefined ? first : Number(span[2]);
    if (first > last || last >= blocksCount) throw new InputError(`${where}: <Range> ${m[2]} is out of order or beyond block ${blocksCount - 1}`);
    const prev = ranges[ranges.length - 1];
    if (prev && first <= prev.last) throw new InputError(`${where}: <Range> ${m[2]} overlaps or precedes the range before it`);
    const cs = attr ? new RegExp(`\\b${attr}\\s*=\\s*"([0-9a-fA-F]+)"`).exec(m[1])?.[1]?.toLowerCase() : undefined;
    ranges.push(cs ? { first, last, checksum: cs } : { first, last });
    mapped += last - first + 1;
  }
  if (mapped !== mappedBlocksCount) {
    throw new InputError(`${where}: <MappedBlocksCount> says ${mappedBlocksCount} but the ranges map ${mapped} blocks`);
  }
  if (fileSumTag) {
    const stored = tag(text, fileSumTag);
    if (stored && /^[0-9a-f]+$/i.test(stored)) {
      const pos = xml.indexOf(stored);
      const zeroed = xml.slice(0, pos) + '0'.repeat(stored.length) + xml.slice(pos + stored.length);
      const sum = createHash(checksumType).update(zeroed).digest('hex');
      if (sum !== stored.toLowerCase()) {
        throw new CorruptImageError(`${where}: the bmap file's own checksum does not match (file damaged or edited)`, pos);
      }
    }
  }
  return { version: `${major}.${minor}`, imageSize, blockSize, blocksCount, mappedBlocksCount, checksumType, ranges };
}

/** Default bmap path for an image: `<image>.bmap`, as bmaptool looks for it. */
export function defaultBmapPath(imagePath: string): string {
  return `${imagePath}.bmap`;
}
