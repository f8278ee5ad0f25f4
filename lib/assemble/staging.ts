// Output staging for builds: everything is written under out/.staging-<id>/ and moved to its final name only
// when complete, so a build killed mid-way leaves nothing under the final names and the next build starts clean.
import { mkdirSync, readdirSync, renameSync, rmSync, existsSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { processAlive } from '../pid.ts';

const PREFIX = '.staging-';

export class Staging {
  readonly dir: string;
  private constructor(
    readonly outDir: string,
    id: string,
  ) {
    this.dir = join(outDir, `${PREFIX}${id}`);
  }

  /** Make a staging dir in outDir, first removing the leftovers of builds that died (their pid is gone). */
  static create(outDir: string): Staging {
    mkdirSync(outDir, { recursive: true });
    for (const name of readdirSync(outDir)) {
      const m = /^\.(?:staging|old)-(\d+)-/.exec(name);
      if (m && !processAlive(Number(m[1]))) rmSync(join(outDir, name), { recursive: true, force: true });
    }
    const s = new Staging(outDir, `${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(s.dir, { recursive: true });
    return s;
  }

  /** The staging path of out/<rel>. */
  path(...rel: string[]): string {
    return join(this.dir, ...rel);
  }

  /** Move a staged directory (a node's outputs) to out/<name>, replacing an older one. */
  commitDir(name: string): void {
    const final = join(this.outDir, name);
    const old = join(this.outDir, `.old-${process.pid}-${randomBytes(4).toString('hex')}-${name}`);
    if (existsSync(final)) renameSync(final, old);
    renameSync(this.path(name), final);
    rmSync(old, { recursive: true, force: true });
  }

  /**
   * Write a small file (the manifest) and rename it into out/; with `fsync`, flushed first. Not by default, like
   * the images beside it: an fsync on XFS forces the log out with every clone of the build in it (0.3 s of a 2 s
   * warm build there, by hand), on ext4 it commits the journal.
   */
  commitFile(name: string, content: string, opts: { fsync?: boolean } = {}): void {
    const tmp = this.path(name);
    writeFileSync(tmp, content);
    if (opts.fsync) {
      const fd = openSync(tmp, 'r');
      fsyncSync(fd);
      closeSync(fd);
    }
    renameSync(tmp, join(this.outDir, name));
  }

  discard(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
