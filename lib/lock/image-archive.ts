// One locked image as an archive both runtimes load: an OCI image layout (oci-layout, index.json naming the
// reference, blobs/sha256/…) that `ctr -n k8s.io images import` reads, plus the manifest.json that `docker load`
// reads, pointing at the same blobs (what `docker save` writes since Docker 25; docker load decompresses gzip'd
// layers). Assembled from the blob store by streaming each blob through tar-stream into a file in the cache,
// never held in memory; kept by (format, reference, digest), so a warm build only copies it.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';
import type { LockImage } from './lockfile.ts';
import type { BlobStore } from './store.ts';
import { parseImageRef } from './reference.ts';

const FORMAT = 1;

export interface ImageArchive {
  path: string;
  sha256: string;
  size: number;
}

const hex = (d: string) => d.replace(/^sha256:/, '');

/** The archive of `img`, made once from the store (every blob must be there: ensureLocked). */
export async function imageArchive(img: LockImage, store: BlobStore): Promise<ImageArchive> {
  store.ensure();
  const key = createHash('sha256').update(`${FORMAT}\n${img.id}\n${img.digest}`).digest('hex');
  const path = join(store.archives, `${key}.tar`);
  const recPath = `${path}.json`;
  if (existsSync(path) && existsSync(recPath)) {
    const rec = JSON.parse(readFileSync(recPath, 'utf8')) as ImageArchive;
    if (statSync(path).size === rec.size) return { ...rec, path };
  }
  const ref = parseImageRef(img.id);
  const tagged = img.id.replace(/@sha256:[0-9a-f]{64}$/, '');
  const blobs = [{ digest: img.digest, size: img.size }, img.config, ...img.layers];
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: img.mediaType,
        digest: img.digest,
        size: img.size,
        annotations: { 'io.containerd.image.name': tagged, 'org.opencontainers.image.ref.name': ref.tag ?? 'latest' },
      },
    ],
  };
  const dockerManifest = [{ Config: `blobs/sha256/${hex(img.config.digest)}`, RepoTags: ref.tag ? [tagged.replace(/^docker\.io\/(library\/)?/, '')] : [], Layers: img.layers.map((l) => `blobs/sha256/${hex(l.digest)}`) }];
  const pack = tar.pack();
  const tmp = `${path}.tmp-${process.pid}`;
  const hash = createHash('sha256');
  let size = 0;
  const fd = openSync(tmp, 'w');
  // The consumer: tar bytes to the file as tar-stream makes them (its buffer is bounded by the entry writes' waits).
  const writing = (async () => {
    for await (const chunk of pack) {
      const c = chunk as Buffer;
      hash.update(c);
      size += c.length;
      for (let w = 0; w < c.length; ) w += writeSync(fd, c, w, c.length - w);
    }
  })();
  writing.catch(() => undefined);
  const mtime = new Date(0);
  const done = (res: () => void, rej: (e: Error) => void) => (e?: Error | null) => (e ? rej(e) : res());
  const small = (name: string, text: string) => new Promise<void>((res, rej) => pack.entry({ name, mtime, mode: 0o644, uid: 0, gid: 0 }, text, done(res, rej)));
  const dir = (name: string) => new Promise<void>((res, rej) => pack.entry({ name, type: 'directory', mtime, mode: 0o755, uid: 0, gid: 0 }, done(res, rej)));
  try {
    await small('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await small('index.json', JSON.stringify(index));
    await small('manifest.json', JSON.stringify(dockerManifest));
    await dir('blobs/');
    await dir('blobs/sha256/');
    const seen = new Set<string>();
    for (const b of blobs) {
      if (seen.has(b.digest)) continue;
      seen.add(b.digest);
      let ended!: Promise<void>;
      const entry = pack.entry({ name: `blobs/sha256/${hex(b.digest)}`, size: b.size, mtime, mode: 0o644, uid: 0, gid: 0 });
      ended = new Promise<void>((res, rej) => {
        entry.on('finish', () => res());
        entry.on('error', rej);
      });
      for await (const c of createReadStream(store.path(b.digest), { highWaterMark: 1 << 20 })) {
        if (!entry.write(c as Buffer)) await new Promise<void>((r) => entry.once('drain', () => r()));
      }
      entry.end(undefined as unknown as Buffer);
      await ended;
    }
    pack.finalize();
    await writing;
    closeSync(fd);
  } catch (err) {
    pack.destroy();
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
    rmSync(tmp, { force: true });
    throw err;
  }
  renameSync(tmp, path);
  const rec = { path, sha256: hash.digest('hex'), size };
  const rtmp = `${recPath}.tmp-${process.pid}`;
  writeFileSync(rtmp, JSON.stringify(rec));
  renameSync(rtmp, recPath);
  return rec;
}
