// Randomized FAT write test: hundreds of seeded create / overwrite-shorter / overwrite-longer / delete / mkdir /
// rmdir / rename steps against an in-memory model; after every batch of 25 steps the image must pass fsck.fat -n
// and mtools (mdir -/ -b listing, mcopy of every file) must see exactly the model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO, SliceIO } from '../../lib/image/io.ts';
import { FatFs } from '../../lib/image/fat/index.ts';
import { makeFat, fsckClean, mdirTree, mcopyAll, mtype, prng } from '../helpers/fat-tools.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-fatrnd-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const STEPS = 500;
const BATCH = 25;

for (const k of [
  { fat: 16 as const, kib: 30_000, offsetSectors: 0, seed: 1616 },
  { fat: 32 as const, kib: 100_000, offsetSectors: 2048, spc: 1, seed: 3232 },
]) {
  test(`FAT${k.fat}: ${STEPS} random steps agree with the model, fsck.fat and mtools`, () => {
    const img = makeFat(join(dir, `rnd${k.fat}.img`), k);
    const io = FileIO.open(img.path, { write: true });
    const vol = img.offset ? new SliceIO(io, img.offset, img.size) : io;
    let tick = Date.UTC(2021, 0, 1);
    const fs = FatFs.open(vol, { clock: () => new Date((tick += 2000)) });
    const rnd = prng(k.seed);
    const pick = <T>(a: T[]): T => a[Math.floor(rnd() * a.length)];
    // Model: display path -> content; directories as display paths. Keys compared case-insensitively.
    const files = new Map<string, Buffer>();
    const dirs = new Set<string>(['']);
    const taken = (p: string) => [...files.keys(), ...dirs].some((x) => x.toUpperCase() === p.toUpperCase());
    let serial = 0;
    const newName = (): string => {
      const n = serial++;
      return pick([
        () => `F${n}.TXT`,
        () => `f${n}.c`,
        () => `Long name ${n} with spaces.data`,
        () => `ReadMe${n}.Md`,
        () => `longname-collide-${n % 7}-${n}.txt`,
        () => `NOEXT${n}`,
        () => `lower${n}`,
        () => `a.b.c${n}.tar.gz`,
      ])();
    };
    const data = (n: number): Buffer => {
      const b = Buffer.alloc(n);
      const v = (rnd() * 256) | 0;
      for (let i = 0; i < n; i++) b[i] = (v + i * 7) & 0xff;
      return b;
    };
    const freshPath = (parent: string): string => {
      for (;;) {
        const p = `${parent}/${newName()}`;
        if (!taken(p)) return p;
      }
    };
    const cs = fs.clusterSize;
    const counts: Record<string, number> = {};

    for (let step = 1; step <= STEPS; step++) {
      const fileList = [...files.keys()];
      const dirList = [...dirs];
      const r = rnd();
      let op: string;
      if (r < 0.3 || fileList.length < 3) {
        op = 'create';
        const p = freshPath(pick(dirList));
        const d = data(Math.floor(rnd() * 6 * cs));
        fs.writeFile(p, d);
        files.set(p, d);
      } else if (r < 0.42) {
        op = 'shorter';
        const p = pick(fileList);
        const d = data(Math.floor(rnd() * files.get(p)!.length));
        fs.writeFile(p.toUpperCase(), d); // case-insensitive lookup
        files.set(p, d);
      } else if (r < 0.54) {
        op = 'longer';
        const p = pick(fileList);
        const d = data(files.get(p)!.length + 1 + Math.floor(rnd() * 5 * cs));
        fs.writeFile(p, d);
        files.set(p, d);
      } else if (r < 0.68) {
        op = 'delete';
        const p = pick(fileList);
        fs.unlink(p);
        files.delete(p);
      } else if (r < 0.76) {
        op = 'mkdir';
        const parent = pick(dirList.filter((d) => d.split('/').length <= 2));
        const p = freshPath(parent);
        fs.mkdir(p);
        dirs.add(p);
      } else if (r < 0.8) {
        op = 'rmdir';
        const empty = dirList.filter((d) => d && ![...files.keys(), ...dirs].some((x) => x.startsWith(`${d}/`)));
        if (!empty.length) continue;
        const p = pick(empty);
        fs.rmdir(p);
        dirs.delete(p);
      } else if (r < 0.95) {
        op = 'rename';
        const from = pick(fileList);
        let to: string;
        if (rnd() < 0.2 && fileList.length > 1) {
          to = pick(fileList.filter((x) => x !== from)); // replace an existing file
          files.delete(to);
        } else if (rnd() < 0.2) {
          to = from.slice(0, from.lastIndexOf('/') + 1) + from.slice(from.lastIndexOf('/') + 1).toUpperCase(); // case only
          if (to !== from && taken(to) && to.toUpperCase() !== from.toUpperCase()) continue;
        } else to = freshPath(pick(dirList));
        fs.rename(from, to);
        const d = files.get(from)!;
        files.delete(from);
        files.set(to, d);
      } else {
        op = 'rename-dir';
        const cand = dirList.filter((d) => d);
        if (!cand.length) continue;
        const from = pick(cand);
        const to = freshPath(from.slice(0, from.lastIndexOf('/')));
        fs.rename(from, to);
        for (const set of [dirs]) {
          for (const d of [...set]) if (d === from || d.startsWith(`${from}/`)) (set.delete(d), set.add(to + d.slice(from.length)));
        }
        for (const [p, d] of [...files]) if (p.startsWith(`${from}/`)) (files.delete(p), files.set(to + p.slice(from.length), d));
      }
      counts[op] = (counts[op] ?? 0) + 1;

      if (step % BATCH === 0) {
        const where = `after step ${step} (FAT${k.fat})`;
        try {
          fsckClean(img);
        } catch (e) {
          throw new Error(`${where}: ${(e as Error).message}`);
        }
        const expectTree = [...[...dirs].filter((d) => d).map((d) => `${d}/`), ...files.keys()].sort();
        assert.equal(mdirTree(img), expectTree, `mdir listing ${where}`);
        const back = mcopyAll(img);
        assert.is(back.size, files.size, `file count ${where}`);
        for (const [p, d] of files) assert.ok(back.get(p)?.equals(d), `mcopy content of ${p} ${where}`);
        const sample = [...files.keys()].slice(-3);
        for (const p of sample) assert.ok(mtype(img, p).equals(files.get(p)!), `mtype ${p} ${where}`);
        for (const [p, d] of files) assert.ok(fs.readFile(p).equals(d), `our read of ${p} ${where}`);
      }
    }
    io.close();
    if (process.env.FAT_RANDOM_VERBOSE) console.log(k.fat, counts, files.size, dirs.size);
    for (const op of ['create', 'shorter', 'longer', 'delete', 'mkdir', 'rename']) assert.ok((counts[op] ?? 0) > 5, `${op} ran ${counts[op]} times`);
  });
}

test.run();
