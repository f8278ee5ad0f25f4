// One node's build: SD image, SSD image, their block maps and checksums, optional compressed copies. Runs inline
// or inside a worker thread (lib/build/worker.ts), so it takes and returns plain data only.
import { writeFileSync, createReadStream, createWriteStream, renameSync, mkdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FileIO } from '../image/io.ts';
import type { MbrPartition } from '../image/mbr.ts';
import { renderBmap } from '../image/bmap.ts';
import { digestImage, type ImageDigest } from '../image/digest.ts';
import { writeSdImage, type BootStyle } from './sd-image.ts';
import { writeSsdImage } from './ssd-image.ts';
import type { ManifestImage, ManifestNode, ManifestFile } from './manifest.ts';
import type { ProgressEvent } from '../progress.ts';

export interface NodeJob {
  node: string;
  role: string;
  instanceId: string;
  basePath: string;
  bootPart: MbrPartition;
  rootPart: MbrPartition;
  boot: BootStyle;
  sdSignature: number;
  ssdSignature: number;
  /** Kernel arguments from the node plan (root=…, rootfstype=…, quirks, cgroups …). */
  cmdline: string[];
  seed: Record<string, string>;
  /** Seconds since the epoch for every timestamp written (reproducible builds). */
  epoch: number;
  /** Staging directory of this node (…/.staging-x/<node>). */
  dir: string;
  compress?: 'xz' | 'gz';
  /** Block-range checksums of the SSD image shared by every node (ssdRangeChecksums), as [key, sha256] pairs. */
  ssdKnownRanges?: [string, string][];
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

async function compressFile(path: string, format: 'xz' | 'gz'): Promise<ManifestFile & { format: 'xz' | 'gz' }> {
  const target = `${path}.${format}`;
  const tmp = `${target}.partial`;
  const hash = createHash('sha256');
  let size = 0;
  const sink = createWriteStream(tmp);
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
    if ((await done) !== 0) throw new Error(`xz failed on ${path}: ${err.trim()}`);
  }
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
    diskId: `0x${hex8(signature)}`,
    partUuids: [`${hex8(signature)}-01`],
    mappedBytes: digest.mappedBlocks * digest.blockSize,
  };
}

/** Build one node into job.dir. Paths in the result are absolute; the caller makes them relative. */
export async function runNodeJob(job: NodeJob, onProgress: (e: ProgressEvent) => void = () => {}): Promise<ManifestNode> {
  mkdirSync(job.dir, { recursive: true });
  const base = FileIO.open(job.basePath);
  try {
    const clock = () => new Date(job.epoch * 1000);
    const ssdPath = join(job.dir, 'ssd.img');
    const sdPath = join(job.dir, 'sd.img');
    const ssd = writeSsdImage({
      path: ssdPath,
      base,
      rootPart: job.rootPart,
      diskSignature: job.ssdSignature,
      known: job.ssdKnownRanges ? new Map(job.ssdKnownRanges) : undefined,
      onProgress: (e) => onProgress({ ...e, phase: `${job.node}: ssd` }),
    });
    const sd = writeSdImage({
      path: sdPath,
      base,
      bootPart: job.bootPart,
      diskSignature: job.sdSignature,
      boot: job.boot,
      cmdline: job.cmdline,
      seed: job.seed,
      clock,
    });
    const sdDigest = digestImage(sdPath, sd.mapped, { onProgress: (e) => onProgress({ ...e, phase: `${job.node}: checksum sd` }) });
    const ssdDigest = ssd.digest;
    const sdEntry: ManifestImage = imageEntry(sdPath, sdDigest, job.sdSignature, `${sdPath}.bmap`, renderBmap({ imageSize: sdDigest.size, blockSize: sdDigest.blockSize, ranges: sdDigest.ranges }));
    const ssdEntry: ManifestImage = imageEntry(ssdPath, ssdDigest, job.ssdSignature, `${ssdPath}.bmap`, renderBmap({ imageSize: ssdDigest.size, blockSize: ssdDigest.blockSize, ranges: ssdDigest.ranges }));
    if (job.compress) {
      onProgress({ phase: `${job.node}: compress`, done: 0, unit: 'items' });
      sdEntry.compressed = await compressFile(sdPath, job.compress);
      ssdEntry.compressed = await compressFile(ssdPath, job.compress);
    }
    return {
      role: job.role,
      instanceId: job.instanceId,
      sd: sdEntry,
      ssd: ssdEntry,
      rootPartUuid: ssd.rootPartUuid,
      cmdline: sd.cmdline,
    };
  } finally {
    base.close();
  }
}
