// Shared setup of the first-boot suite: decides plainly whether the suite can run here (root, debootstrap, qemu, a
// Debian mirror), then builds or reuses the cached root fs and base image. Memoised: every test file shares one run.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DownloadError, cannotBuild, cacheDir, debianMirror, ensureRootFs, mountedUnder, recipeKey, type RootFs } from './rootfs.ts';
import { ensureBaseImage, type BaseImage } from './layout.ts';
import { qemuMissing } from './qemu.ts';
import { existsSync } from 'node:fs';
import { which } from './sh.ts';

export interface BootEnv {
  /** set when the suite cannot run here: the reason, said plainly */
  skip?: string;
  base?: BaseImage;
  /** where console logs of this run are kept */
  logDir: string;
}

let memo: Promise<BootEnv> | undefined;

const say = (s: string) => process.stderr.write(`[boot] ${s}\n`);

/** Removes root fs trees and base images of earlier recipes (each is 1–2 GB); never one with mounts under it. */
function pruneStale(keep: string[]): void {
  const dir = cacheDir();
  for (const name of readdirSync(dir)) {
    if (!/^rootfs-[0-9a-f]{16}(\.complete|\.log)?$|^debian12-amd64-raspi-layout-[0-9a-f]{16}\.img$/.test(name)) continue;
    const path = join(dir, name);
    if (keep.some((k) => path === k || path.startsWith(`${k}.`))) continue;
    if (mountedUnder(path)) continue;
    rmSync(path, { recursive: true, force: true });
    say(`removed ${name} (an earlier recipe)`);
  }
}

export function prepare(): Promise<BootEnv> {
  memo ??= (async (): Promise<BootEnv> => {
    const logDir = join(cacheDir(), 'logs');
    mkdirSync(logDir, { recursive: true });
    const q = qemuMissing();
    if (q) return { skip: q, logDir };
    for (const tool of ['sfdisk', 'mkfs.vfat', 'mcopy', 'mkfs.ext4']) {
      if (!which(tool)) return { skip: `${tool} is not installed (bash test/run.sh installs the test tools)`, logDir };
    }
    const cached = existsSync(join(cacheDir(), `rootfs-${recipeKey()}.complete`));
    if (!cached) {
      const mirror = debianMirror();
      const why = await cannotBuild(mirror);
      if (why) return { skip: why, logDir };
      say(`building the Debian 12 root fs once with debootstrap from ${mirror} (a few minutes; cached in ${cacheDir()})`);
    }
    // Progress of a cold build: the phase lines only (the whole debootstrap output goes to the build log).
    let rootfs: RootFs;
    try {
      rootfs = await ensureRootFs((s) => {
        for (const l of s.split('\n')) if (l.startsWith('[pi-image-boot ')) say(l.slice(1).replace(']', ':'));
      });
    } catch (e) {
      if (e instanceof DownloadError) return { skip: e.message, logDir };
      throw e;
    }
    if (rootfs.built) say(`root fs built in ${rootfs.seconds.toFixed(0)} s`);
    const base = ensureBaseImage(rootfs);
    if (base.built) say(`base image laid out in ${base.seconds.toFixed(1)} s: ${base.path}`);
    pruneStale([rootfs.dir, base.path]);
    return { base, logDir };
  })();
  return memo;
}
