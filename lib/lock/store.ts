// The content-addressed part of the cache (the same cache directory as the base images): blobs/sha256/<hex> holds
// every locked file, archive member, image manifest, config and layer, and archives/ the image archives built
// from them. Invariant: a file appears under its digest only by rename after its bytes were checked.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cache } from '../source/cache.ts';

export class BlobStore {
  readonly dir: string;
  constructor(cacheDir?: string) {
    this.dir = new Cache(cacheDir).dir;
  }
  get blobs(): string {
    return join(this.dir, 'blobs', 'sha256');
  }
  get tmp(): string {
    return join(this.dir, 'blobs', 'tmp');
  }
  get archives(): string {
    return join(this.dir, 'archives');
  }
  ensure(): void {
    for (const d of [this.blobs, this.tmp, this.archives]) mkdirSync(d, { recursive: true });
  }
  /** Path of a blob by hex sha256 or `sha256:<hex>`. */
  path(digest: string): string {
    return join(this.blobs, digest.replace(/^sha256:/, ''));
  }
  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }
  /** Keep small bytes (manifests, configs) under their sha256. */
  put(bytes: Buffer): string {
    const hex = createHash('sha256').update(bytes).digest('hex');
    if (!this.has(hex)) {
      this.ensure();
      const tmp = join(this.tmp, `${hex}.${process.pid}`);
      writeFileSync(tmp, bytes);
      renameSync(tmp, this.path(hex));
    }
    return hex;
  }
  /** Move a verified file into the store under `hex`. */
  adopt(file: string, hex: string): string {
    this.ensure();
    if (this.has(hex)) rmSync(file, { force: true });
    else renameSync(file, this.path(hex));
    return this.path(hex);
  }
}
