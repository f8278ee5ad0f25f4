// Errors that cross the build's worker-thread boundary arrive as their own class, with their code, hint and
// fields (lib/errors.ts serializeError/reviveError; the build's lanes, lib/assemble/pool.ts, and flash's hash workers,
// lib/flash/hash-workers.ts): callers test `instanceof`, not strings.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { runLanes, startLaneWorkers } from '../../lib/assemble/pool.ts';
import type { LaneJob } from '../../lib/assemble/node-job.ts';
import { CorruptImageError, InputError, LockRefusal, PiImageError, UsageError, reviveError, serializeError, ERROR_CLASSES } from '../../lib/errors.ts';
import { DownloadError } from '../../lib/source/download.ts';
import { hashRangesParallel } from '../../lib/flash/hash-workers.ts';
import { tempDir } from '../helpers/lookalike.ts';

let work: string;
test.before(() => {
  work = tempDir('pi-image-worker-errors-');
});
test.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const part = (index: number, startLba: number, sectors: number, type: number) =>
  ({ index, type, bootable: index === 1, startLba, sectors, start: startLba * 512, size: sectors * 512 });

/** A lane over 8 MiB of zeros: partition 1 at LBA 2048 holds no FAT boot sector, which the lane finds in its thread. */
function zerosJob(name: string): LaneJob {
  const base = join(work, `${name}.img`);
  writeFileSync(base, '');
  truncateSync(base, 8 << 20);
  return {
    nodes: [{ node: 'node1', role: 'master', instanceId: 'i', sdSignature: 1, ssdSignature: 2, cmdline: [], seed: {}, secret: false, dir: join(work, 'stage', 'node1') }],
    base: { path: base, size: 8 << 20 },
    bootPart: part(1, 2048, 4096, 0x0c),
    rootPart: part(2, 6144, 8192, 0x83),
    boot: { kernel: 'vmlinuz', initrd: 'initrd.img', compression: 'auto', decompressedKernel: 'vmlinux', model: 'pi4', pi4Firmware: 'start4.elf' },
    epoch: 1577836800,
    fsync: false,
  };
}

test('a damaged boot partition found inside a lane arrives as CorruptImageError with its code and byte offset', async () => {
  const job = zerosJob('zeros');
  try {
    await runLanes([job], () => {});
    assert.unreachable('the lane should fail');
  } catch (err) {
    assert.instance(err, CorruptImageError, `got ${(err as Error)?.constructor?.name}: ${(err as Error).message}`);
    const e = err as CorruptImageError;
    assert.is(e.code, 'CORRUPT');
    assert.is(e.name, 'CorruptImageError');
    assert.type(e.offset, 'number');
    assert.ok(e.offset! >= 2048 * 512, `the offset ${e.offset} lies in partition 1`);
    assert.match(e.message, /^node1: /, 'the lane is named in front');
    assert.match(e.stack ?? '', /CorruptImageError|at /, 'the worker\'s stack is kept');
  }
});

test('lane workers started ahead of their jobs run them; one left without a lane is ended, not left running', async () => {
  const started = startLaneWorkers(2);
  const idleExit = new Promise<number>((resolve) => started[1]!.once('exit', resolve));
  try {
    await runLanes([zerosJob('zeros-started')], () => {}, started);
    assert.unreachable('the lane should fail');
  } catch (err) {
    assert.instance(err, CorruptImageError, `got ${(err as Error)?.constructor?.name}: ${(err as Error).message}`);
    assert.match((err as Error).message, /^node1: /);
  }
  assert.type(await idleExit, 'number', 'the idle worker exited');
});

test('a file that ends early under flash\'s hash workers arrives as CorruptImageError with the byte offset', async () => {
  const short = join(work, 'short.img');
  writeFileSync(short, Buffer.alloc(10_000, 1));
  try {
    await hashRangesParallel(short, [{ start: 0, length: 4096 }, { start: 8192, length: 4096 }], { workers: 2 });
    assert.unreachable('the read past the end should fail');
  } catch (err) {
    assert.instance(err, CorruptImageError, `got ${(err as Error)?.constructor?.name}: ${(err as Error).message}`);
    assert.is((err as CorruptImageError).code, 'CORRUPT');
    assert.is((err as CorruptImageError).offset, 10_000);
    assert.match((err as Error).message, /short\.img: ends early \(at byte offset 10000\)/);
  }
});

test('serializeError/reviveError keep the class, code, hint and fields, through a structured clone', () => {
  const cases: Error[] = [
    new DownloadError('http://127.0.0.1:1/x.img.xz', 'HTTP 404 Not Found', { status: 404 }),
    new LockRefusal('image nginx', 'docker://x', 'kubernetes.images', 'no arm64 manifest'),
    new UsageError('--all and node names together', 'give one of them'),
    new CorruptImageError('bad FAT', 4096),
  ];
  for (const original of cases) {
    const back = reviveError(structuredClone(serializeError(original)), [...ERROR_CLASSES, DownloadError]);
    assert.is(back.constructor, original.constructor, original.name);
    assert.is(back.message, original.message);
    for (const k of Object.keys(original)) assert.equal((back as unknown as Record<string, unknown>)[k], (original as unknown as Record<string, unknown>)[k], `${original.name}.${k}`);
  }
  const usage = reviveError(serializeError(new UsageError('x')));
  assert.ok(usage instanceof InputError && usage instanceof PiImageError, 'subclasses stay subclasses');
});

test('an unknown class with a code comes back as PiImageError; without one as a plain Error', () => {
  const odd = Object.assign(new Error('strange'), { code: 'EPIPE' });
  odd.name = 'OddError';
  const a = reviveError(serializeError(odd));
  assert.instance(a, PiImageError);
  assert.is((a as PiImageError).code, 'EPIPE');
  const b = reviveError(serializeError(new TypeError('x is not a function')));
  assert.ok(b instanceof Error && !(b instanceof PiImageError));
  assert.is(b.message, 'x is not a function');
});

test.run();
