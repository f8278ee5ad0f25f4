// `build`: a profile and a base image in, per node an SD boot image and an SSD OS image out, with block maps and a
// manifest. Decompresses once (the source cache), copies only used blocks, runs nodes in parallel, and writes
// everything under out/.staging-* until it is complete.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { locateBootRoot } from '../pi/partitions.ts';
import { resolveImage, cacheDir } from '../source/index.ts';
import { DEFAULT_BOOT } from '../source/catalog.ts';
import { loadProfile, loadOrCreateSecrets, nodePlan, selectNodes } from '../cluster/index.ts';
import { renewToken } from '../cluster/secrets.ts';
import { loginWarning } from '../cluster/login.ts';
import { InputError } from '../errors.ts';
import { PACKAGE_VERSION } from '../paths.ts';
import type { OnProgress } from '../progress.ts';
import { Staging } from './staging.ts';
import { newSignal, settleSignal } from './signal.ts';
import { runLanes, startLaneWorkers } from './pool.ts';
import { loadSsdChecksums, saveSsdChecksums, startRootCopy } from './ssd-image.ts';
import type { LaneJob, LaneResult, NodeSpec } from './node-job.ts';
import type { BootStyle } from './sd-image.ts';
import { readManifest, renderManifest, type Manifest, type ManifestNode, type ManifestImage } from './manifest.ts';
import { readLock } from '../lock/lock.ts';
import { prepareBundles } from '../lock/prepare.ts';

export interface BuildOptions {
  /** Node names, or 'all'. */
  nodes: string[] | 'all';
  /** Profile path (default: ./pi-image.yaml, else the reference cluster). */
  profile?: string;
  /** Base image: catalog id, URL or path (default: the profile's). */
  image?: string;
  outDir?: string;
  jobs?: number;
  secretsDir?: string;
  cacheDir?: string;
  mirror?: string;
  compress?: 'xz' | 'gz';
  /**
   * fsync each image and the manifest before they are renamed into place, so the outputs survive a power cut, at the disk's speed
   * (default off: like cp or make, the build leaves writeback to the kernel; a damaged image is caught by its bmap
   * checksums when flashed).
   */
  fsync?: boolean;
  /** Timestamp for everything written (seconds); default SOURCE_DATE_EPOCH, else the profile's `epoch`. */
  sourceDateEpoch?: number;
  onProgress?: OnProgress;
  /** Replace the cluster's bootstrap token with a fresh one first (a node added later: the old one expired). */
  newToken?: boolean;
  /** One-line notices: no user can log in (a warning), which artifacts hold secrets and are 0600. */
  onNotice?: (kind: 'warning' | 'info', text: string) => void;
  /** Called with their directory when the cluster's secrets were made by this build (they must be kept). */
  onSecretsCreated?: (dir: string) => void;
  /** Build from the cache alone: every locked artifact must be there (the base image too). */
  offline?: boolean;
  /** Called when a node is complete and in place. */
  onNode?: (name: string, node: ManifestNode) => void;
}

export interface BuildResult {
  outDir: string;
  /** The nodes this build made (the manifest may also list nodes built before). */
  built: string[];
  manifestPath: string;
  manifest: Manifest;
}

/** Lanes (worker threads) when --jobs is not given, whatever the core count. */
const MAX_LANES = 2;

/** An error about the base image names what the user gave (path, URL, catalog id), not the cache file it was
 *  copied or decoded into (`<cache>/images/<sha>.img`, or its `.tmp-PID` while it is being written). */
function nameSource(err: unknown, cacheDirectory: string, src: string): unknown {
  if (err instanceof Error) {
    const dir = join(resolve(cacheDirectory), 'images').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    err.message = err.message.replace(new RegExp(`${dir}/[0-9a-f]{64}\\.img(\\.tmp-\\d+)?`, 'g'), src);
  }
  return err;
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const seen: { src?: string } = {};
  try {
    return await runBuild(opts, seen);
  } catch (err) {
    throw seen.src ? nameSource(err, cacheDir(opts.cacheDir), seen.src) : err;
  }
}

async function runBuild(opts: BuildOptions, seen: { src?: string }): Promise<BuildResult> {
  const onProgress = opts.onProgress ?? (() => {});
  const loaded = await loadProfile(opts.profile);
  const profile = loaded.profile;
  const names = profile.nodes.map((n) => n.name);
  const wanted = selectNodes(profile, opts.nodes, `profile ${loaded.profilePath}`);
  if (wanted.length === 0) throw new InputError('no node named', `name nodes (${names.join(', ')}) or pass --all`);
  const notice = opts.onNotice ?? (() => {});
  const noLogin = loginWarning(profile);
  if (noLogin) notice('warning', noLogin);
  // A first sign of life as soon as the profile is read; the next comes once the image is found.
  onProgress({ phase: `build ${profile.cluster.name}`, done: 0, total: wanted.length, unit: 'items', detail: 'finding the base image' });
  // The lock beside the profile: refused when stale; its artifacts fetched into the cache (or, offline, required
  // there) and carried per role on the SSD images.
  const locked = readLock(loaded.profilePath);
  if (!locked && opts.offline) throw new InputError(`--offline needs a lock: no pi-image.lock beside ${loaded.profilePath}`, 'run `pi-image lock` first');
  const bundles = locked ? await prepareBundles(locked.lock, locked.path, profile, { cacheDir: opts.cacheDir, offline: opts.offline, onProgress }) : undefined;
  // Resolve the base image. When it has to be decompressed with xz, the handle comes while xz still writes it: the
  // lanes read the growing file (reads wait for the bytes) and the result is kept only if `image.done` ends well.
  const src = opts.image ?? profile.image;
  seen.src = src;
  const image = await resolveImage(src, { cacheDir: opts.cacheDir, mirror: opts.mirror, onProgress });
  // The image is there (or being decompressed): only now can the build go on, so only now are secrets made.
  const secretsOpts = { dir: opts.secretsDir, profilePath: loaded.profilePath, onCreated: opts.onSecretsCreated };
  if (opts.newToken) {
    const file = await renewToken(profile, secretsOpts);
    const master = profile.nodes.find((n) => n.role === 'master');
    const admin = profile.users.find((u) => u.sudo)?.name ?? 'ubuntu';
    const host = master ? (master.address === 'dhcp' ? master.fqdn : master.address.ip) : '<master>';
    notice('info', `new bootstrap token in ${file}; before the node boots, tell the master: ssh ${admin}@${host} sudo kubeadm token create "$(cat ${file})" --ttl ${profile.kubernetes.tokenTTL}`);
  }
  const secrets = await loadOrCreateSecrets(profile, secretsOpts);
  const bootData = image.entry?.boot ?? DEFAULT_BOOT;
  const basePath = image.path;
  const { boot: bootPart, root: rootPart } = locateBootRoot(image.table, { name: basePath, spec: bootData });
  const boot: BootStyle = {
    kernel: bootData.kernel,
    initrd: bootData.initrd,
    compression: bootData.kernelCompression,
    decompressedKernel: bootData.decompressedKernel,
    model: bootData.model,
    pi4Firmware: bootData.pi4Firmware,
  };
  const envEpoch = process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : undefined;
  // Build time for FAT timestamps: opts.sourceDateEpoch, then SOURCE_DATE_EPOCH, then the profile's `epoch`.
  const epoch = opts.sourceDateEpoch ?? envEpoch ?? profile.epoch;
  if (!Number.isInteger(epoch) || epoch < 315532800) {
    throw new InputError(`SOURCE_DATE_EPOCH=${epoch} is not usable`, 'give whole seconds since 1970, at or after 1980 (FAT cannot store earlier)');
  }

  const outDir = resolve(opts.outDir ?? 'out');
  const staging = Staging.create(outDir);
  let started: Worker[] = [];
  try {
    // Every node's SSD image holds the same root blocks: their checksums are made once per base image, and each
    // image's whole-file sha256 once per disk signature, and kept beside it (so are the SD images' whole-file sha256,
    // by content: image/digest.ts contentKey). Lanes: one per core, also while xz
    // decompresses: then they run at a lower CPU priority (runLane), so xz, the critical path, keeps its core and
    // the lanes take the rest. (Leaving xz a core of its own instead left that core idle once xz was done: 28-35 s
    // against 26 s for the cold bench build.)
    const checksumsFile = `${basePath}.ssd-checksums-${rootPart.start}-${rootPart.size}.json`;
    const known = loadSsdChecksums(checksumsFile);
    // At most MAX_LANES by default: each lane is a thread with its own heap, library and buffers (~16 MB), and the
    // build's whole process stays within 150 MB with two (measured: bench/build.ts); --jobs raises it.
    const cores = Math.max(1, opts.jobs ?? Math.min(MAX_LANES, availableParallelism()));
    const laneCount = Math.max(1, Math.min(cores, wanted.length));
    const dirs = new Map(wanted.map((name) => [name, staging.dir(name)]));
    // Which nodes each lane builds (their order kept).
    const laneOf = (i: number) => Math.floor((i * laneCount) / wanted.length);
    // From a complete base, the kernel copies the root's blocks into every SSD image right away, one helper process
    // per lane beside the rest (signal.ts): the lanes wait for them only when they reach their SSD images.
    const precopied = image.ref.growing ? undefined : newSignal();
    let rootCopy: { done: Promise<boolean>; stop: () => void } | undefined;
    if (precopied) {
      try {
        const groups = Array.from({ length: laneCount }, (_, l) => wanted.filter((_, i) => laneOf(i) === l).map((name) => join(dirs.get(name)!, 'ssd.img')));
        rootCopy = startRootCopy(basePath, rootPart, groups);
        void rootCopy.done.then((ok) => settleSignal(precopied, ok));
      } catch {
        settleSignal(precopied, false); // never leave a lane waiting: it copies itself, and meets the error again
      }
    }
    // The lanes' threads start now, loading their modules while this thread makes the seeds.
    started = startLaneWorkers(laneCount);
    const specs: NodeSpec[] = wanted.map((name) => {
      const role = profile.nodes.find((n) => n.name === name)?.role as 'master' | 'worker' | undefined;
      const plan = nodePlan(profile, name, secrets, { bundledPackages: !!role && !!bundles?.[role].items.some((i) => i.kind === 'deb') });
      return {
        node: name,
        role: plan.role,
        instanceId: plan.instanceId,
        sdSignature: plan.sdDiskSignature,
        ssdSignature: plan.ssdDiskSignature,
        cmdline: plan.cmdline,
        seed: plan.seed,
        secret: plan.secretFiles.length > 0,
        dir: dirs.get(name)!,
        bundle: bundles?.[plan.role as 'master' | 'worker'],
      };
    });
    const secretNodes = specs.filter((s) => s.secret).map((s) => s.node);
    if (secretNodes.length > 0) {
      const what = `sd.img${opts.compress ? ` and sd.img.${opts.compress}` : ''}`;
      notice('info', `${what} of ${secretNodes.join(', ')} hold cluster secrets in the seed (first boot scrubs them from the SD): written 0600, keep them private`);
    }
    const lanes: LaneJob[] = Array.from({ length: laneCount }, (_, l) => ({
      nodes: specs.filter((_, i) => laneOf(i) === l),
      precopied,
      base: image.ref,
      bootPart,
      rootPart,
      boot,
      epoch,
      compress: opts.compress,
      fsync: opts.fsync ?? false,
      ssdChecksums: known,
    }));
    // Both settle before the build goes on or fails; a failed decompression is the cause worth naming.
    const [ran, cached] = await Promise.allSettled([runLanes(lanes, onProgress, started), image.done]);
    if (ran.status === 'rejected' || cached.status === 'rejected') {
      rootCopy?.stop(); // a lane that failed may never have waited for it
      await rootCopy?.done;
    }
    if (cached.status === 'rejected') throw cached.reason;
    if (ran.status === 'rejected') throw ran.reason;
    const laneResults: LaneResult[] = ran.value;
    // Keep what the lanes learnt: the shared ranges (the same from every lane) and each node's whole-file sha256.
    const learnt = {
      ranges: laneResults[0].ssdChecksums.ranges,
      wholes: new Map(laneResults.flatMap((r) => [...r.ssdChecksums.wholes])),
      bundled: new Map(laneResults.flatMap((r) => [...(r.ssdChecksums.bundled ?? [])])),
      byContent: new Map(laneResults.flatMap((r) => [...(r.ssdChecksums.byContent ?? [])])),
      copied: new Map(laneResults.flatMap((r) => [...(r.ssdChecksums.copied ?? [])])),
    };
    const adds = (got: Map<string, unknown>, had: Map<string, unknown> | undefined) => [...got.keys()].some((k) => !had?.has(k));
    if (!known || learnt.wholes.size > known.wholes.size || adds(learnt.bundled, known.bundled) || adds(learnt.byContent, known.byContent) || adds(learnt.copied, known.copied)) {
      saveSsdChecksums(checksumsFile, learnt);
    }
    const results = laneResults.flatMap((r) => r.nodes);
    const jobs = lanes.flatMap((l) => l.nodes);

    const rel = (f: { file: string }) => {
      f.file = staging.finalRel(f.file);
    };
    const nodes: Record<string, ManifestNode> = {};
    results.forEach((r, i) => {
      for (const img of [r.sd, r.ssd] as ManifestImage[]) {
        rel(img);
        rel(img.bmap);
        if (img.compressed) rel(img.compressed);
      }
      nodes[jobs[i].node] = r;
    });
    // Nodes built earlier from the same profile, image and time stay listed, so `build node2` after `build node1`
    // leaves a manifest of both.
    const previous = readManifest(join(outDir, 'manifest.json'));
    if (previous && previous.profile.digest === loaded.digest && previous.image.sha256 === image.sourceSha256 && previous.sourceDateEpoch === epoch) {
      for (const [name, node] of Object.entries(previous.nodes)) {
        if (!(name in nodes) && names.includes(name) && existsSync(join(outDir, name))) nodes[name] = node;
      }
    }
    const manifest: Manifest = {
      manifestVersion: 1,
      generator: `pi-image ${PACKAGE_VERSION}`,
      sourceDateEpoch: epoch,
      profile: { cluster: profile.cluster.name, digest: loaded.digest },
      image: { id: image.id, sha256: image.sourceSha256 },
      nodes: Object.fromEntries(Object.keys(nodes).sort().map((k) => [k, nodes[k]])),
    };
    for (const name of wanted) {
      staging.commitDir(name);
      opts.onNode?.(name, nodes[name]);
    }
    staging.commitFile('manifest.json', renderManifest(manifest), { fsync: opts.fsync });
    return { outDir, built: [...wanted], manifestPath: join(outDir, 'manifest.json'), manifest };
  } catch (err) {
    for (const w of started) void w.terminate(); // lanes that never got a job (runLanes ends its own)
    staging.discard();
    throw err;
  }
}
