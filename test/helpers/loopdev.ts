// Loop devices for the flash tests only (product code never uses them): attach a file, optionally mkfs + mount a
// partition-less filesystem on it, and clean up. Each returns a reason string instead when the host forbids it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();

export interface Loop {
  dev: string;
  mountpoint?: string;
  detach(): void;
}

/** Attach `file` as a loop device, or return why that is not possible here. */
export function attachLoop(file: string): Loop | string {
  if (process.platform !== 'linux') return 'loop devices need Linux';
  let dev: string;
  try {
    dev = run('losetup', ['-f', '--show', file]);
  } catch (err) {
    return `losetup not permitted here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  const loop: Loop = {
    dev,
    detach() {
      if (loop.mountpoint) {
        try {
          run('umount', [loop.mountpoint]);
        } catch {
          /* already unmounted (flash --unmount) */
        }
        rmSync(loop.mountpoint, { recursive: true, force: true });
      }
      try {
        run('losetup', ['-d', dev]);
      } catch {
        /* gone */
      }
    },
  };
  return loop;
}

/** Attach, make an ext4 on the whole device and mount it; or return why not. */
export function mountedLoop(file: string): Loop | string {
  const loop = attachLoop(file);
  if (typeof loop === 'string') return loop;
  try {
    run('mkfs.ext4', ['-q', '-F', loop.dev]);
    const mp = mkdtempSync(join(tmpdir(), 'pi-image-mnt-'));
    loop.mountpoint = mp;
    run('mount', [loop.dev, mp]);
    return loop;
  } catch (err) {
    loop.detach();
    return `mount not permitted here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
}
