// Builds (once) and caches a minimal Debian 12 amd64 root file system that boots like Ubuntu's raspi image does:
// systemd, cloud-init with the NoCloud seed on the `system-boot` partition, a kernel and an initramfs with virtio and
// vfat. debootstrap needs root; the directory is cached under PI_IMAGE_BOOT_CACHE (or ~/.cache/pi-image-boot), keyed
// by a hash of the recipe below, so editing the recipe rebuilds it and nothing else does. debootstrap runs in two
// stages so that, before any package is configured, dpkg gets force-unsafe-io (no fsync per file: a few minutes on a
// VM disk) and initramfs-tools gets a short module list (one small initramfs: made once, in seconds, and quicker to
// boot under TCG than the 36 MB `MODULES=most` one, which took 2 minutes to make here, twice).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, renameSync, writeFileSync, appendFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { run, runLogged, which } from './sh.ts';

export const SUITE = 'bookworm';

/** Everything that decides the root fs's content; its hash names the cache entry. */
export const RECIPE = {
  suite: SUITE,
  arch: 'amd64',
  variant: 'minbase',
  // python3-cffi-backend must be named: without it cloud-init's dependencies fail to configure under debootstrap.
  include: [
    'systemd', 'systemd-sysv', 'udev', 'cloud-init', 'python3-cffi-backend', 'linux-image-amd64', 'initramfs-tools',
    'e2fsprogs', 'dosfstools', 'fdisk', 'util-linux', 'iproute2', 'sudo', 'openssh-server',
  ],
  // The initramfs must find the root fs on a virtio disk by LABEL/PARTUUID; the FAT modules serve /boot/firmware.
  // MODULES=list: only these (and their dependencies, e.g. crc32c for ext4) go into the initramfs.
  initramfsModules: ['virtio_pci', 'virtio_blk', 'virtio_net', 'ext4', 'vfat', 'nls_cp437', 'nls_ascii'],
  initramfsConf: 'MODULES=list\nCOMPRESS=gzip\n',
  // Debian 12's cloud-init has no netplan: with systemd-networkd enabled it renders network-config v2 for networkd.
  enable: ['systemd-networkd'],
  files: {
    'etc/fstab': 'LABEL=writable\t/\text4\tdefaults\t0 1\nLABEL=system-boot\t/boot/firmware\tvfat\tdefaults\t0 1\n',
    'etc/cloud/cloud.cfg.d/99-fake_cloud.cfg':
      '# where cloud-init finds the seed: the FAT boot partition, as in Ubuntu\'s raspi images\n' +
      'datasource_list: [ NoCloud, None ]\ndatasource:\n  NoCloud:\n    fs_label: system-boot\n',
    'etc/hostname': 'debian\n',
    // cloud-init's locale module runs locale-gen, which on Debian builds what /etc/locale.gen lists (Ubuntu ships
    // en_US.UTF-8 ready); without an entry update-locale refuses LANG=en_US.UTF-8 and cloud-init reports an error.
    'etc/locale.gen': 'en_US.UTF-8 UTF-8\n',
    // Ubuntu's netplan marks `optional: true` links not required for online; Debian's networkd renderer does not, so
    // waiting for "online" is bounded here (a Pi that has no network still finishes its first boot).
    'etc/systemd/system/systemd-networkd-wait-online.service.d/10-pi-image-boot.conf':
      '[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=20\n',
    'etc/machine-id': '',
  } as Record<string, string>,
  revision: 2,
};

/** Names the debootstrap'd tree (packages, initramfs, units); the small `files` are laid over it on every use. */
export function recipeKey(): string {
  const { files: _files, ...packages } = RECIPE;
  return createHash('sha256').update(JSON.stringify(packages)).digest('hex').slice(0, 16);
}

/** Names the tree together with its `files`: what the base image is keyed by. */
export function contentKey(): string {
  return createHash('sha256').update(JSON.stringify(RECIPE)).digest('hex').slice(0, 16);
}

function layFiles(dir: string): void {
  for (const [path, content] of Object.entries(RECIPE.files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    const p = join(dir, path);
    if (existsSync(p) && readFileSync(p, 'utf8') === content) continue;
    writeFileSync(p, content);
  }
}

export function cacheDir(): string {
  const dir = process.env.PI_IMAGE_BOOT_CACHE || join(homedir(), '.cache', 'pi-image-boot');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The Debian mirror the machine's apt uses (deb822 .sources or one-line .list), else deb.debian.org. */
export function debianMirror(): string {
  if (process.env.PI_IMAGE_BOOT_MIRROR) return process.env.PI_IMAGE_BOOT_MIRROR;
  const files: string[] = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of readdirSync('/etc/apt/sources.list.d').sort()) {
      if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join('/etc/apt/sources.list.d', f));
    }
  }
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const uris = /^URIs:\s*(.+)$/im.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        const suites = /^Suites:\s*(.+)$/im.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        const enabled = !/^Enabled:\s*no/im.test(stanza);
        if (enabled && suites.includes(SUITE) && uris[0]) return uris[0].replace(/\/$/, '');
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
        if (m && m[2] === SUITE) return m[1].replace(/\/$/, '');
      }
    }
  }
  return 'http://deb.debian.org/debian';
}

/** Why the root fs cannot be built here (plainly), or undefined when it can. */
export async function cannotBuild(mirror: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'debootstrap needs root (run the boot suite as root)';
  if (!which('debootstrap')) return 'debootstrap is not installed (apt-get install debootstrap)';
  if (!which('chroot')) return 'chroot is not available';
  try {
    const res = await fetch(`${mirror}/dists/${SUITE}/Release`, { method: 'HEAD', signal: AbortSignal.timeout(15000) });
    if (!res.ok) return `the Debian mirror ${mirror} answered ${res.status} for dists/${SUITE}/Release`;
  } catch (e) {
    return `no Debian mirror reachable (${mirror}: ${(e as Error).message})`;
  }
  return undefined;
}

/** True when /proc/mounts lists a mount point inside `dir` (debootstrap mounts /proc and /sys in its chroot). */
export function mountedUnder(dir: string): boolean {
  if (!existsSync('/proc/mounts')) return false;
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => {
      const m = l.split(' ')[1]?.replace(/\\040/g, ' ');
      return m !== undefined && (m === dir || m.startsWith(`${dir}/`));
    });
}

/** The root fs could not be built because packages could not be downloaded (a reason to skip, not to fail). */
export class DownloadError extends Error {}

export interface RootFs {
  dir: string;
  key: string;
  /** true when this call built it (cold), false when it came from the cache */
  built: boolean;
  seconds: number;
}

/** Returns the cached root fs directory, building it with debootstrap first when it is missing. */
export async function ensureRootFs(log: (s: string) => void = () => {}): Promise<RootFs> {
  const key = recipeKey();
  const dir = join(cacheDir(), `rootfs-${key}`);
  if (existsSync(`${dir}.complete`)) {
    layFiles(dir);
    return { dir, key: contentKey(), built: false, seconds: 0 };
  }
  const started = Date.now();
  const partial = `${dir}.partial`;
  if (mountedUnder(partial)) throw new Error(`${partial} has file systems mounted under it (an interrupted debootstrap?): unmount them first`);
  rmSync(partial, { recursive: true, force: true });
  const mirror = debianMirror();
  const logFile = `${dir}.log`;
  writeFileSync(logFile, `debootstrap from ${mirror}\n`);
  const tee = (s: string) => {
    appendFileSync(logFile, s);
    log(s);
  };
  const phase = (s: string) => tee(`[pi-image-boot ${((Date.now() - started) / 1000).toFixed(0)} s] ${s}\n`);
  phase('debootstrap stage 1 (download, unpack the essential packages)');
  try {
    await runLogged(
      'debootstrap',
      ['--foreign', `--variant=${RECIPE.variant}`, `--arch=${RECIPE.arch}`, `--include=${RECIPE.include.join(',')}`, SUITE, partial, mirror],
      tee,
    );
  } catch (e) {
    // The mirror answered at first but the downloads failed: the network's fault, not the recipe's.
    const msg = (e as Error).message;
    if (/couldn't download|failed getting release|couldn't retrieve|wget: /i.test(msg)) throw new DownloadError(`debootstrap could not download from ${mirror}: ${msg.split('\n').slice(-3).join(' ')} (log: ${logFile})`);
    throw e;
  }
  // Before stage 2 configures anything: dpkg without fsync, and the initramfs settings the kernel's postinst uses.
  const unsafeIo = join(partial, 'etc/dpkg/dpkg.cfg.d/99-pi-image-boot-unsafe-io');
  mkdirSync(join(unsafeIo, '..'), { recursive: true });
  writeFileSync(unsafeIo, 'force-unsafe-io\n');
  mkdirSync(join(partial, 'etc/initramfs-tools/conf.d'), { recursive: true });
  writeFileSync(join(partial, 'etc/initramfs-tools/conf.d/pi-image-boot'), RECIPE.initramfsConf);
  mkdirSync(join(partial, 'usr/share/initramfs-tools/modules.d'), { recursive: true });
  writeFileSync(join(partial, 'usr/share/initramfs-tools/modules.d/pi-image-boot'), RECIPE.initramfsModules.join('\n') + '\n');
  phase('debootstrap stage 2 (install and configure in the chroot)');
  await runLogged('chroot', [partial, '/debootstrap/debootstrap', '--second-stage'], tee);
  if (mountedUnder(partial)) throw new Error(`debootstrap left file systems mounted under ${partial}: unmount them, then rerun`);
  rmSync(unsafeIo, { force: true });
  phase('debootstrap done');
  const initrds = readdirSync(join(partial, 'boot')).filter((f) => f.startsWith('initrd.img-'));
  if (initrds.length === 0) throw new Error(`no initramfs in ${partial}/boot after debootstrap (see ${logFile})`);
  const listed = run('chroot', [partial, 'lsinitramfs', `/boot/${initrds[0]}`]);
  for (const mod of ['virtio_blk', 'virtio_pci', 'ext4']) {
    if (!new RegExp(`/${mod}\\.ko`).test(listed)) throw new Error(`the initramfs ${initrds[0]} lacks ${mod}.ko (see ${logFile})`);
  }
  for (const unit of RECIPE.enable) run('chroot', [partial, 'systemctl', 'enable', unit]);
  layFiles(partial);
  // Nothing of the build host may leak into the image; apt's caches only cost space.
  rmSync(join(partial, 'etc/resolv.conf'), { force: true });
  rmSync(join(partial, 'var/lib/dbus/machine-id'), { force: true });
  for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
    const p = join(partial, d);
    if (!existsSync(p)) continue;
    for (const f of readdirSync(p)) if (f.endsWith('.deb') || f.includes('_dists_')) rmSync(join(p, f), { force: true });
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  writeFileSync(`${dir}.complete`, `${new Date().toISOString()}\n`);
  phase('root fs ready');
  return { dir, key: contentKey(), built: true, seconds: (Date.now() - started) / 1000 };
}
