// Small process helpers for the first-boot suite: run a tool, find a tool, say why something cannot run.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const PATH = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'].filter(Boolean);
export const toolEnv = { ...process.env, PATH: PATH.join(delimiter), LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' };

/** Absolute path of a command on PATH (+ /usr/sbin, /sbin), or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of PATH) {
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

/** Run a command to completion; throws with its stderr tail when it exits non-zero. */
export function run(cmd: string, args: string[], opts: { input?: string | Buffer; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { env: toolEnv, input: opts.input, cwd: opts.cwd, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const err = (r.stderr?.toString() ?? '') + (r.stdout?.toString() ?? '');
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${err.trim().split('\n').slice(-15).join('\n')}`);
  }
  return r.stdout.toString();
}

/** Like run() but returns the raw stdout bytes. */
export function runBytes(cmd: string, args: string[]): Buffer {
  const r = spawnSync(cmd, args, { env: toolEnv, maxBuffer: 512 << 20 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().trim()}`);
  return r.stdout;
}

/** Run a long command asynchronously, appending its output to a log callback; rejects on non-zero exit. */
export function runLogged(cmd: string, args: string[], log: (s: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: toolEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const onData = (d: Buffer) => {
      const s = d.toString();
      tail = (tail + s).slice(-4000);
      log(s);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}:\n${tail.trim().split('\n').slice(-20).join('\n')}`)),
    );
  });
}
