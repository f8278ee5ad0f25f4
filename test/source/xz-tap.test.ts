// XzTap (xz fed from a download's growing .partial) settles whatever order its events come in. The orders that
// hung the unit suite (issue 12, point 1) and left `images fetch` with Node's "unsettled top-level await" (exit 13,
// point 2) are forced here, not waited for: every libuv pool thread is held on a read of an empty FIFO, so the
// tap's next read of the .partial waits in the queue while xz is killed and its exit is handled; then the pool is
// let go and the read completes after xz (and its stdin pipe) are gone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, read, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { XzTap } from '../../lib/source/xz-tap.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-tap-'));
const images = join(dir, 'images');
mkdirSync(images);
// 3 MiB of random bytes compress to about 3 MiB: more than a pipe holds, so the tap reads the file in several goes.
const xz = execFileSync('xz', ['-T1', '-0', '-c'], { input: randomBytes(3 << 20), maxBuffer: 8 << 20 });
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Hold every libuv pool thread on a blocking read of an empty FIFO; `release()` lets them all go. */
function holdPool(): { release: () => Promise<void> } {
  const fifo = join(dir, `fifo-${Date.now()}`);
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, 'r+'); // read-write: opening does not wait for a writer
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const reads = Array.from({ length: threads }, () => new Promise<void>((resolve) => read(fd, Buffer.alloc(1), 0, 1, null, () => resolve())));
  return {
    release: async () => {
      writeSync(fd, Buffer.alloc(threads));
      await Promise.all(reads);
      closeSync(fd);
    },
  };
}

/** `p`, or a rejection once `ms` have passed (so a hang fails the test instead of holding the suite). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

test('discard settles when xz is gone before a pending read of the .partial completes', async () => {
  const partial = join(dir, 'a.img.xz.partial');
  writeFileSync(partial, xz);
  const pool = holdPool();
  const tap = new XzTap(images, partial, 'a.img.xz', 0);
  tap.data(xz, xz.length); // starts xz; the feeder's first read of the .partial now waits for a pool thread
  assert.ok(tap.job, 'xz started');
  const discarded = tap.discard(); // kills xz (as after a checksum mismatch) and waits for the feeder
  await within(tap.job!.result.then(() => assert.unreachable('killed'), () => undefined), 10_000, 'xz exit');
  await pool.release(); // the read completes now, after xz and its stdin pipe are gone
  await within(discarded, 10_000, 'XzTap.discard()');
  assert.equal(readdirSync(images), [], 'the partial image is deleted');
});

test('finish settles with an error when xz dies while a read of the .partial is pending', async () => {
  const partial = join(dir, 'b.img.xz.partial');
  writeFileSync(partial, xz);
  const pool = holdPool();
  const tap = new XzTap(images, partial, 'b.img.xz', 0);
  tap.data(xz, xz.length);
  const finished = tap.finish().then(() => undefined, (e: Error) => e); // the download has ended
  tap.job!.kill(); // xz gone on its own (damaged data, out of memory): not through reset()
  await within(tap.job!.result.then(() => assert.unreachable('killed'), () => undefined), 10_000, 'xz exit');
  await pool.release();
  const err = await within(finished, 10_000, 'XzTap.finish()');
  assert.match(String(err?.message), /b\.img\.xz: xz data is damaged or truncated/);
  await within(tap.discard(), 10_000, 'XzTap.discard()');
  assert.equal(readdirSync(images), []);
});

test.run();
