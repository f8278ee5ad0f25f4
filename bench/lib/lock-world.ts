// The lock benches' servers in a process of their own (so their CPU is charged to neither side and the bench's
// own event loop cannot delay them): test/helpers/lock-fixtures.ts's world — Debian's docker-registry with bearer
// tokens and a file server on 127.0.0.1 — with `--mib N` of random layers per add-on image, and a lookalike base
// image with a profile using them. Prints one JSON line (profile path, token URL) when ready; closes everything
// and exits when its stdin ends. Usage (from a bench): startWorldProcess(dir, mib).
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface WorldInfo {
  profile: string;
  tokenUrl: string;
  close(): Promise<void>;
}

/** Start this file as a child process with the world in `dir`; resolves when it is ready. */
export function startWorldProcess(dir: string, mib: number): Promise<WorldInfo> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), dir, String(mib)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const info = JSON.parse(out.slice(0, nl)) as { profile: string; tokenUrl: string };
      resolve({ ...info, close: () => (child.stdin!.end(), exited) });
    });
    child.on('close', (code) => reject(new Error(`the lock world process exited (${code}) before it was ready`)));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { makeUbuntuLookalike } = await import('../../test/helpers/lookalike.ts');
  const { startLockWorld, lockProfile } = await import('../../test/helpers/lock-fixtures.ts');
  const [dir, mib] = [process.argv[2]!, Number(process.argv[3])];
  mkdirSync(dir, { recursive: true });
  const world = await startLockWorld(join(dir, 'world'), { bigBytes: mib * 2 ** 20 });
  const look = await makeUbuntuLookalike(join(dir, 'base'), { extraRootFiles: { 'var/lib/dpkg/arch': 'arm64\n' } });
  mkdirSync(join(dir, 'p'), { recursive: true });
  const profile = join(dir, 'p', 'pi-image.yaml');
  writeFileSync(profile, lockProfile(world, look.img));
  process.stdout.write(JSON.stringify({ profile, tokenUrl: world.registry.token!.url }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => void world.close().then(() => process.exit(0)));
}
