// Export an ext4 root filesystem (read with lib/image/ext4, no mounts) as a tar (tar-stream) or as a directory
// tree, keeping modes, owners, times, symlinks, hard links and device nodes, with per-node file overrides (changed
// fstab, cloud-init config, the seed) applied on the way. Streams file contents; memory stays flat.
import { createWriteStream, mkdirSync, openSync, writeSync, closeSync, symlinkSync, linkSync, chownSync, chmodSync, lutimesSync, utimesSync, renameSync, rmSync, existsSync, lchownSync } from 'node:fs';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import tar from 'tar-stream';
import type { Header, Pack as TarPack } from 'tar-stream';
type TarHeaders = Partial<Header> & Pick<Header, 'name'>;
import type { Ext4Fs, Ext4Stat } from '../image/ext4/index.ts';
import type { OnProgress } from '../progress.ts';
import { InputError, atPath } from '../errors.ts';

/** A file to put into the exported root: replaces an image file (keeping its owner/mode/times unless given) or adds
 *  a new one (default root:root 0644, parents created 0755). */
export interface FileOverride {
  /** The content, or (for a large file such as the bundle) its size and its chunks, read as they are written. */
  data: Buffer | string | StreamedData;
  mode?: number;
  uid?: number;
  gid?: number;
}

/** A file's bytes produced in order; a chunk may be a reused buffer, used before the next is asked for. */
export interface StreamedData {
  size: number;
  chunks: () => Iterable<Buffer>;
}

export interface ExportOptions {
  /** Absolute path in the root → new content. */
  overrides?: Record<string, FileOverride>;
  /** Time for added files and directories (default: the image root's mtime, so output is reproducible). */
  mtime?: Date;
  onProgress?: OnProgress;
}

export interface ExportResult {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  devices: number;
  bytes: number;
  /** Device nodes not created (directory export without root): their paths. */
  skippedDevices: string[];
}

interface Entry {
  path: string;
  stat: Ext4Stat;
  /** For overrides. */
  data?: Buffer;
  /** For a streamed override. */
  chunks?: () => Iterable<Buffer>;
}

/** The image walk with overrides merged in: replaced files carry `data`; added files come after the walk, each
 *  preceded by any missing parent directory. */
function* entries(fs: Ext4Fs, opts: ExportOptions): Iterable<Entry> {
  const over = new Map<string, FileOverride>();
  for (const [p, o] of Object.entries(opts.overrides ?? {})) {
    if (!p.startsWith('/')) throw new InputError(`export override path must be absolute: ${p}`);
    over.set(p.replace(/\/+$/, ''), o);
  }
  const seenDirs = new Set<string>();
  let rootMtime = new Date(0);
  for (const e of fs.walk('/')) {
    if (e.path === '/') rootMtime = e.stat.mtime;
    if (e.stat.type === 'dir') seenDirs.add(e.path);
    const o = over.get(e.path);
    if (o) {
      over.delete(e.path);
      if (e.stat.type !== 'file' && e.stat.type !== 'symlink') {
        throw new InputError(`cannot replace ${e.path}: it is a ${e.stat.type} in the image`);
      }
      yield overrideEntry(e.path, o, e.stat.type === 'file' ? e.stat : undefined, opts.mtime ?? rootMtime);
    } else yield e;
  }
  const mtime = opts.mtime ?? rootMtime;
  for (const [p, o] of [...over.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const d = '/' + parts.slice(0, i).join('/');
      if (!seenDirs.has(d)) {
        seenDirs.add(d);
        yield { path: d, stat: synthStat(0o040755, 0, 0, 0, mtime) };
      }
    }
    yield overrideEntry(p, o, undefined, mtime);
  }
}

function synthStat(mode: number, uid: number, gid: number, size: number, mtime: Date): Ext4Stat {
  return {
    ino: 0, mode, type: (mode & 0o170000) === 0o040000 ? 'dir' : 'file', uid, gid, size, links: 1,
    atime: mtime, mtime, ctime: mtime,
  };
}

function overrideEntry(path: string, o: FileOverride, base: Ext4Stat | undefined, mtime: Date): Entry {
  const streamed = typeof o.data === 'object' && !Buffer.isBuffer(o.data) ? o.data : undefined;
  const data = streamed ? undefined : Buffer.isBuffer(o.data) ? o.data : Buffer.from(o.data as string);
  const perm = o.mode ?? (base ? base.mode & 0o7777 : 0o644);
  const st = synthStat(0o100000 | perm, o.uid ?? base?.uid ?? 0, o.gid ?? base?.gid ?? 0, streamed?.size ?? data!.length, base?.mtime ?? mtime);
  return { path, stat: st, data, chunks: streamed?.chunks };
}

/** A file entry's bytes: the override's, else the image's. `copy`: each chunk its own buffer (a stream keeps them). */
function* bodyOf(fs: Ext4Fs, e: Entry, copy: boolean): Iterable<Buffer> {
  if (e.data) yield e.data;
  else if (e.chunks) {
    let n = 0;
    for (const c of e.chunks()) {
      n += c.length;
      yield copy ? Buffer.from(c) : c;
    }
    if (n !== e.stat.size) throw new Error(`${e.path}: ${n} bytes written where ${e.stat.size} were announced`);
  } else yield* fs.readChunks(e.stat.ino);
}

function newResult(): ExportResult {
  return { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, devices: 0, bytes: 0, skippedDevices: [] };
}

/** Hard-link bookkeeping: the first path seen for each multiply-linked inode. */
class Links {
  private first = new Map<number, string>();
  /** The earlier path this entry should link to, or undefined (and remember it). */
  check(e: Entry): string | undefined {
    if (e.data || e.chunks || e.stat.ino === 0 || e.stat.links < 2 || e.stat.type === 'dir') return undefined;
    const prev = this.first.get(e.stat.ino);
    if (prev !== undefined) return prev;
    this.first.set(e.stat.ino, e.path);
    return undefined;
  }
}

const tarName = (p: string): string => (p === '/' ? './' : '.' + p);

/** Write the root as a tar file at `out` (written as out.partial, renamed on success). */
export async function exportTar(fs: Ext4Fs, out: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const res = newResult();
  const tmp = `${out}.partial`;
  const pack = tar.pack();
  const file = createWriteStream(tmp);
  const done = pipeline(pack, file);
  // The pipeline fails as soon as an entry does (a damaged file, a full disk), maybe before `await done` below:
  // handled here, so it is not an unhandled rejection that kills the process; the error still comes from addEntry.
  done.catch(() => {});
  const links = new Links();
  const progress = opts.onProgress;
  try {
    for (const e of entries(fs, opts)) {
      const st = e.stat;
      const header: TarHeaders = {
        name: tarName(e.path),
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        mtime: st.mtime,
        size: 0,
      };
      const linkTo = links.check(e);
      if (linkTo !== undefined) {
        header.type = 'link';
        header.linkname = tarName(linkTo);
        res.hardlinks++;
        await addEntry(pack, header);
        continue;
      }
      switch (st.type) {
        case 'dir':
          header.type = 'directory';
          res.dirs++;
          await addEntry(pack, header);
          break;
        case 'symlink':
          header.type = 'symlink';
          header.linkname = fs.readlink(st.ino);
          res.symlinks++;
          await addEntry(pack, header);
          break;
        case 'chardev':
        case 'blockdev':
          header.type = st.type === 'chardev' ? 'character-device' : 'block-device';
          header.devmajor = st.rdev?.major ?? 0;
          header.devminor = st.rdev?.minor ?? 0;
          res.devices++;
          await addEntry(pack, header);
          break;
        case 'fifo':
          header.type = 'fifo';
          res.devices++;
          await addEntry(pack, header);
          break;
        case 'socket':
          break; // tar cannot hold sockets; they are recreated by their daemons at run time
        case 'file': {
          header.type = 'file';
          header.size = st.size;
          res.files++;
          res.bytes += st.size;
          await addEntry(pack, header, bodyOf(fs, e, true));
          progress?.({ phase: 'export', done: res.bytes, detail: 'tar' });
          break;
        }
      }
    }
    pack.finalize();
    await done;
    renameSync(tmp, out);
    return res;
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => {});
    // The file may still be opening (opens are asynchronous): remove it only once it is closed, or it comes back.
    if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve())); // not once(): it rejects on 'error'
    rmSync(tmp, { force: true });
    throw atPath(err, out); // a write that failed on the tar's fd (ENOSPC) names the file
  }
}

async function addEntry(pack: TarPack, header: TarHeaders, body?: Buffer | Iterable<Buffer>): Promise<void> {
  const finished = new Promise<void>((resolve, reject) => {
    const stream = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    // An entry dies with the pack (a full disk under the tar) or with its body (a damaged file): its 'error' is this
    // promise's rejection, never an unhandled 'error' event that kills the process.
    stream.on('error', reject);
    if (header.type !== 'file') return;
    void (async () => {
      try {
        const chunks = body === undefined ? [] : Buffer.isBuffer(body) ? [body] : body;
        for (const c of chunks) if (!stream.write(c)) await once(stream, 'drain');
        stream.end(undefined as unknown as Buffer);
      } catch (err) {
        stream.destroy(err as Error);
        reject(err);
      }
    })();
  });
  await finished;
}

/** Write the root as a directory tree at `out` (made as out.partial, renamed on success). Owners and device
 *  nodes need root; without it they are skipped and reported. */
export async function exportDir(fs: Ext4Fs, out: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const res = newResult();
  const tmp = `${out}.partial`;
  if (existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
  const isRoot = process.getuid?.() === 0;
  const links = new Links();
  const dirTimes: Array<[string, Date, Date]> = [];
  const dirModes: Array<[string, number]> = [];
  const target = (p: string): string => (p === '/' ? tmp : join(tmp, p));
  try {
    for (const e of entries(fs, opts)) {
      const st = e.stat;
      const dst = target(e.path);
      const linkTo = links.check(e);
      if (linkTo !== undefined) {
        linkSync(target(linkTo), dst);
        res.hardlinks++;
        continue;
      }
      switch (st.type) {
        case 'dir':
          mkdirSync(dst, { recursive: e.path === '/', mode: 0o700 });
          dirModes.push([dst, st.mode & 0o7777]);
          dirTimes.push([dst, st.atime, st.mtime]);
          res.dirs++;
          break;
        case 'symlink':
          symlinkSync(fs.readlink(st.ino), dst);
          res.symlinks++;
          break;
        case 'file': {
          const fd = openSync(dst, 'w', 0o600);
          try {
            let pos = 0;
            for (const c of bodyOf(fs, e, false)) {
              writeSync(fd, c, 0, c.length, pos);
              pos += c.length;
            }
          } finally {
            closeSync(fd);
          }
          res.files++;
          res.bytes += st.size;
          opts.onProgress?.({ phase: 'export', done: res.bytes, detail: 'dir' });
          break;
        }
        case 'chardev':
        case 'blockdev':
        case 'fifo': {
          if (!isRoot && st.type !== 'fifo') {
            res.skippedDevices.push(e.path);
            continue;
          }
          const kind = st.type === 'chardev' ? ['c', String(st.rdev?.major ?? 0), String(st.rdev?.minor ?? 0)]
            : st.type === 'blockdev' ? ['b', String(st.rdev?.major ?? 0), String(st.rdev?.minor ?? 0)] : ['p'];
          execFileSync('mknod', [dst, ...kind]);
          res.devices++;
          break;
        }
        case 'socket':
          continue;
      }
      if (st.type !== 'dir') {
        if (st.type === 'symlink') {
          if (isRoot) lchownSync(dst, st.uid, st.gid);
          lutimesSync(dst, st.atime, st.mtime);
        } else {
          chmodSync(dst, st.mode & 0o7777);
          if (isRoot) chownSync(dst, st.uid, st.gid);
          chmodSync(dst, st.mode & 0o7777); // chown clears setuid bits: set the mode again
          utimesSync(dst, st.atime, st.mtime);
        }
      } else if (isRoot) chownSync(dst, st.uid, st.gid);
    }
    // Directory modes and times last (writing into a directory changes its mtime; a 0555 dir would refuse).
    for (const [d, m] of dirModes) chmodSync(d, m);
    for (const [d, a, m] of dirTimes.reverse()) utimesSync(d, a, m);
    if (existsSync(out)) rmSync(out, { recursive: true, force: true });
    mkdirSync(dirname(out), { recursive: true });
    renameSync(tmp, out);
    return res;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
