// A lane of the build: for each of its nodes the SD image, the SSD image, their block maps and checksums and
// optional compressed copies; the SSD images of the lane in one pass over the base root. Runs inside a worker
// thread (lib/assemble/worker.ts), so it takes and returns plain data only.
import { writeFileSync, createReadStream, createWriteStream, renameSync, mkdirSync, rmSync, chmodSync } from 'node:fs';
import { threadId, isMainThread } from 'node:worker_threads';
import { getPriority, setPriority } from 'node:os';
import { spawn } from 'node:child_process';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FileIO, type BlockIO } from '../image/io.ts';
import { openImage, type ImageRef } from '../source/image-handle.ts';
import { diskIdText, partUuid, type MbrPartition } from '../image/mbr.ts';
import { renderBmap } from '../image/bmap.ts';
import { digestImage, type ImageDigest } from '../image/digest.ts';
import { writeSdImages, openBootSource, prepareKernel, type BootStyle } from './sd-image.ts';
import { writeSsdImages, type SsdChecksums } from './ssd-image.ts';
import type { ManifestImage, ManifestNode, ManifestFile } from './manifest.ts';
import type { ProgressEvent } from '../progress.ts';
import type { BundlePlan } from '../lock/bundle.ts';
import { BuildError } from '../errors.ts';

/** One node of a lane: what differs between nodes. */
export interface NodeSpec {
  node: string;
  role: string;
  instanceId: string;
  sdSignature: number;
  ssdSignature: number;
  /** Kernel arguments from the node plan (root=…, rootfstype=…, quirks, cgroups …). */
  cmdline: string[];
  seed: Record<string, string>;
  /** The seed holds secrets: sd.img and its compressed copy are written 0600. */
  secret: boolean;
  /** Staging directory of this node (out/.staging-<id>-<node>: staging.ts). */
  dir: string;
  /** The role's share of the lock, carried as SSD partition 2 (lib/lock/bundle.ts). */
  bundle?: BundlePlan;
}

/** A lane: several nodes built by one thread, their SSD images in a single pass over the base root. */
export interface LaneJob {
  nodes: NodeSpec[];
  /** The base image (the resolved handle's ref): while it is still being decompressed, reads wait for the bytes. */
  base: ImageRef;
  bootPart: MbrPartition;
  rootPart: MbrPartition;
  boot: BootStyle;
  /** Seconds since the epoch for every timestamp written (reproducible builds). */
  epoch: number;
  compress?: 'xz' | 'gz';
  /** fsync each image once written (BuildOptions.fsync). */
  fsync: boolean;
  /** Checksums of the SSD images known from earlier builds of this base image (loadSsdChecksums). */
  ssdChecksums?: SsdChecksums;
  /** Settled by the main thread once the kernel has copied the root into the lane's SSD images, or could not. */
  precopied?: SharedArrayBuffer;
}

export interface LaneResult {
  nodes: ManifestNode[];
  /** The SSD checksums after this lane, with what it learnt (worth keeping beside the base image: saveSsdChecksums). */
  ssdChecksums: SsdChecksums;
}

/**
 * Lower this thread's CPU priority (nice +10) while the base image is still being decompressed, so xz keeps its
 * core. Only in a worker thread on Linux, where setpriority(0) applies to the calling thread alone (and the thread
 * ends with the lane); elsewhere it would renice the caller for good, so nothing is done. Best effort: a refusal
 * is ignored.
 */
function yieldToDecompression(): void {
  if (process.platform !== 'linux' || isMainThread) return;
  try {
    setPriority(0, Math.max(10, getPriority(0)));
  } catch {
    /* not allowed here: run at the usual priority */
  }
}

async function compressFile(path: string, format: 'xz' | 'gz', mode = 0o644): Promise<ManifestFile & { format: 'xz' | 'gz' }> {
  const target = `${path}.${format}`;
  const tmp = `${target}.partial`;
  const hash = createHash('sha256');
  let size = 0;
  const sink = createWriteStream(tmp, { mode });
  const count = async function* (src: AsyncIterable<Buffer>) {
    for await (const chunk of src) {
      hash.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  };
  if (format === 'gz') {
    await pipeline(createReadStream(path), createGzip({ level: 6 }), count, sink);
  } else {
    // xz in one stream; -T1 keeps the output independent of the machine's core count (reproducible).
    const xz = spawn('xz', ['-T1', '-3', '-c', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    xz.stderr.on('data', (d) => (err += d));
    const done = new Promise<number>((resolve) => xz.on('close', (code) => resolve(code ?? 1)));
    await pipeline(xz.stdout, count, sink);
    if ((await done) !== 0) throw new BuildError(`xz failed on ${path}: ${err.trim()}`);
  }
  chmodSync(tmp, mode);
  renameSync(tmp, target);
  return { file: target, size, sha256: hash.digest('hex'), format };
}

function imageEntry(
  path: string,
  digest: ImageDigest,
  signature: number,
  bmapPath: string,
  bmapText: string,
): Omit<ManifestImage, 'compressed'> {
  writeFileSync(bmapPath, bmapText);
  return {
    file: path,
    size: digest.size,
    sha256: digest.sha256,
    bmap: { file: bmapPath, size: Buffer.byteLength(bmapText), sha256: createHash('sha256').update(bmapText).digest('hex') },
    diskId: diskIdText(signature),
    partUuids: [partUuid(signature, 1)],
    mappedBytes: digest.mappedBlocks * digest.blockSize,
  };
}

/** Build a lane's nodes into their directories. Paths in the result are absolute; the caller makes them relative. */
export async function runLane(job: LaneJob, onProgress: (e: ProgressEvent) => void = () => {}): Promise<LaneResult> {
  if (job.base.growing) yieldToDecompression();
  const base = openImage(job.base);
  try {
    const clock = () => new Date(job.epoch * 1000);
    const label = job.nodes.map((n) => n.node).join(', ');
    for (const n of job.nodes) mkdirSync(n.dir, { recursive: true });
    // The kernel is decompressed once for the lane, into its first node's staging directory, streaming.
    const kernelTmp = join(job.nodes[0].dir, `.kernel-${threadId}`);
    const checksums: SsdChecksums = {
      ranges: new Map(job.ssdChecksums?.ranges ?? []),
      wholes: new Map(job.ssdChecksums?.wholes ?? []),
      bundled: new Map(job.ssdChecksums?.bundled ?? []),
      byContent: new Map(job.ssdChecksums?.byContent ?? []),
      copied: new Map(job.ssdChecksums?.copied ?? []),
    };
    // A complete base (not one still being decompressed): the kernel copies from it.
    const basePath = job.base.growing ? undefined : job.base.path;
    // SD images first: the boot partition comes first in the base image, so they can start while it is decompressed
    // (or while the kernel copies the SSD images' root from a complete base).
    let sds;
    try {
      const source = openBootSource(base, job.bootPart, job.boot);
      const kernel = await prepareKernel(base, source, job.boot, kernelTmp);
      sds = writeSdImages({
        targets: job.nodes.map((n) => ({ path: join(n.dir, 'sd.img'), diskSignature: n.sdSignature, cmdline: n.cmdline, seed: n.seed, secret: n.secret })),
        base, basePath, source, bootPart: job.bootPart, boot: job.boot, clock, kernel, fsync: job.fsync,
        // The boot files copied unchanged from the base are hashed once per base image (checksums.copied).
        digest: (io, sd, i) =>
          digestImage(io, sd.mapped, {
            wholes: checksums.byContent,
            copied: { ...io.cleanRanges(), known: checksums.copied! },
            onProgress: (e) => onProgress({ ...e, phase: `${job.nodes[i]!.node}: checksum sd` }),
          }),
      });
    } finally {
      rmSync(kernelTmp, { force: true });
    }
    const ssds = writeSsdImages({
      targets: job.nodes.map((n) => ({ path: join(n.dir, 'ssd.img'), diskSignature: n.ssdSignature, bundle: n.bundle })),
      base,
      basePath,
      rootPart: job.rootPart,
      checksums,
      fsync: job.fsync,
      precopied: job.precopied,
      onProgress: (e) => onProgress({ ...e, phase: `${label}: ssd` }),
    });
    const nodes: ManifestNode[] = [];
    for (const [i, n] of job.nodes.entries()) {
      const sd = sds[i];
      const sdDigest = sd.digest;
      const ssd = ssds[i];
      const sdEntry: ManifestImage = imageEntry(sd.path, sdDigest, n.sdSignature, `${sd.path}.bmap`, renderBmap({ imageSize: sdDigest.size, blockSize: sdDigest.blockSize, ranges: sdDigest.ranges }));
      const ssdEntry: ManifestImage = imageEntry(ssd.path, ssd.digest, n.ssdSignature, `${ssd.path}.bmap`, renderBmap({ imageSize: ssd.digest.size, blockSize: ssd.digest.blockSize, ranges: ssd.digest.ranges }));
      if (job.compress) {
        onProgress({ phase: `${n.node}: compress`, done: 0, unit: 'items' });
        sdEntry.compressed = await compressFile(sd.path, job.compress, n.secret ? 0o600 : 0o644);
        ssdEntry.compressed = await compressFile(ssd.path, job.compress);
      }
      if (n.bundle) ssdEntry.partUuids.push(partUuid(n.ssdSignature, 2));
      const bundle = n.bundle && {
        partition: 2,
        size: n.bundle.size,
        items: n.bundle.items.map((it) => ({ kind: it.kind, name: it.name, size: it.size, sha256: it.sha256, source: it.source })),
      };
      nodes.push({ role: n.role, instanceId: n.instanceId, sd: sdEntry, ssd: ssdEntry, rootPartUuid: ssd.rootPartUuid, cmdline: sd.cmdline, ...(bundle ? { bundle } : {}) });
    }
    return { nodes, ssdChecksums: checksums };
  } finally {
    base.close();
  }
}
