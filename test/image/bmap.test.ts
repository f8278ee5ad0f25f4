// bmap files: ours are read by `bmaptool copy` (which checks the file checksum and every range checksum) and
// reproduce the image; bmaptool's own files (2.0, and a hand-made 1.3) parse with ours and give the same ranges.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBmap, writeBmapFile, parseBmap, renderBmap, bmapByteRanges, hashBlockRanges } from '../../lib/image/bmap.ts';
import { alignRanges } from '../../lib/image/sparse.ts';
import { FileIO } from '../../lib/image/io.ts';
import { CorruptImageError, InputError } from '../../lib/errors.ts';
import { scatteredImage, MiB } from '../helpers/scattered-image.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-bmap-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const data = [
  { start: 0, length: 512 },
  { start: 3 * MiB + 100, length: 2 * MiB },
  { start: 17 * MiB, length: 4096 * 3 },
];
const SIZE = 24 * MiB + 1000; // not a block multiple: the last block is partial
const img = join(dir, 'a.img');
scatteredImage(img, SIZE, [...data, { start: SIZE - 10, length: 10 }]);

test('scanned bmap: bmaptool copy accepts it and reproduces the image', async () => {
  const bmap = join(dir, 'a.img.bmap');
  await writeBmapFile(img, bmap);
  assert.not.ok(existsSync(`${bmap}.partial-${process.pid}`));
  const b = parseBmap(readFileSync(bmap, 'utf8'), bmap);
  assert.is(b.version, '2.0');
  assert.is(b.checksumType, 'sha256');
  assert.is(b.imageSize, SIZE);
  assert.is(b.blocksCount, Math.ceil(SIZE / 4096));
  assert.equal(bmapByteRanges(b), alignRanges([...data, { start: SIZE - 10, length: 10 }], 4096, SIZE));
  const out = join(dir, 'copy.img');
  execFileSync('bmaptool', ['-q', 'copy', '--bmap', bmap, img, out], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('cmp', [img, out]);
});

test('bmap from given ranges equals the scanned one when the ranges are the data', async () => {
  const ranges = [...data, { start: SIZE - 10, length: 10 }];
  assert.is(await createBmap(img, ranges), await createBmap(img));
  // Wider ranges (zero blocks included) are mapped as given and still copy correctly with bmaptool.
  const wide = await createBmap(img, [{ start: 0, length: 8 * MiB }, { start: 16 * MiB, length: 2 * MiB }]);
  const b = parseBmap(wide);
  assert.equal(b.ranges.map((r) => [r.first, r.last]), [[0, 2047], [4096, 4607]]);
  const bmap = join(dir, 'wide.bmap');
  writeFileSync(bmap, wide);
  const out = join(dir, 'wide.img');
  execFileSync('bmaptool', ['-q', 'copy', '--bmap', bmap, img, out], { stdio: ['ignore', 'ignore', 'pipe'] });
  const a = readFileSync(out);
  assert.ok(a.subarray(0, 8 * MiB).equals(readFileSync(img).subarray(0, 8 * MiB)));
});

test("bmaptool create's file parses with ours; its range checksums match our hashing", () => {
  const bmap = join(dir, 'theirs.bmap');
  execFileSync('bmaptool', ['-q', 'create', '-o', bmap, img], { stdio: ['ignore', 'ignore', 'pipe'] });
  const b = parseBmap(readFileSync(bmap, 'utf8'), bmap);
  assert.is(b.imageSize, SIZE);
  assert.is(b.checksumType, 'sha256');
  assert.ok(b.ranges.length > 0 && b.ranges.every((r) => r.checksum && r.checksum.length === 64));
  const io = FileIO.open(img);
  const ours = hashBlockRanges(io, b.ranges.map((r) => ({ first: r.first, last: r.last })), b.blockSize, b.imageSize);
  io.close();
  assert.equal(ours, b.ranges);
});

test('a bmap 1.3 file (sha1, BmapFileSHA1) parses', () => {
  const io = FileIO.open(img);
  const [r] = hashBlockRanges(io, [{ first: 0, last: 0 }], 4096, SIZE, { checksumType: 'sha1' });
  io.close();
  let xml = `<?xml version="1.0" ?>\n<bmap version="1.3">\n<ImageSize> ${SIZE} </ImageSize>\n<BlockSize> 4096 </BlockSize>\n<BlocksCount> ${Math.ceil(SIZE / 4096)} </BlocksCount>\n<MappedBlocksCount> 1 </MappedBlocksCount>\n<BmapFileSHA1> ${'0'.repeat(40)} </BmapFileSHA1>\n<BlockMap>\n<Range sha1="${r.checksum}"> 0 </Range>\n</BlockMap>\n</bmap>\n`;
  xml = xml.replace('0'.repeat(40), createHash('sha1').update(xml).digest('hex'));
  const b = parseBmap(xml);
  assert.is(b.version, '1.3');
  assert.is(b.checksumType, 'sha1');
  assert.equal(b.ranges, [{ first: 0, last: 0, checksum: r.checksum }]);
});

test('damaged or inconsistent bmaps are refused with a reason', () => {
  const good = renderBmap({ imageSize: 8192, blockSize: 4096, ranges: [{ first: 1, last: 1, checksum: 'ab'.repeat(32) }] });
  assert.is(parseBmap(good).mappedBlocksCount, 1);
  assert.throws(() => parseBmap(good.replace('> 1 </Range>', '> 0 </Range>')), (e: unknown) => e instanceof CorruptImageError && /own checksum/.test(String(e)));
  assert.throws(() => parseBmap(good.replace('<BlocksCount> 2 ', '<BlocksCount> 3 ')), (e: unknown) => e instanceof InputError && /inconsistent/.test(String(e)));
  assert.throws(() => parseBmap('<xml/>', 'x.bmap'), /x.bmap: not a bmap file/);
  assert.throws(() => parseBmap(good.replace('> 1 </Range>', '> 5 </Range>')), /beyond block/);
});

test.run();
