// For benches whose servers live in the bench's own process: a command timed under /usr/bin/time, run
// asynchronously (the servers keep answering), with its peak RSS (the child and its waited-for descendants); and
// the compiled CLI (tsc into bench/.tmp/<name>, rebuilt when a source is newer), or the sources under tsx.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newestTs } from './newest-ts.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const now = (): number => Number(process.hrtime.bigint()) / 1e9;

export function timed(cmd: string, argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ secs: number; rssMB: number; stdout: string }> {
  const t0 = now();
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/time', ['-f', '%M', cmd, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1', ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${argv.join(' ')} failed (${code}):\n${err.slice(-3000)}`));
      else resolve({ secs: now() - t0, rssMB: Number(err.trim().split('\n').pop()) / 1024, stdout: out });
    });
  });
}

/** node's arguments that run the CLI: the compiled tree in bench/.tmp/<name>, or the sources with --tsx. */
export function cliEntry(name: string, useTsx: boolean): string[] {
  if (useTsx) return ['--import', 'tsx', join(ROOT, 'bin', 'pi-image.ts')];
  const out = join(ROOT, 'bench', '.tmp', name);
  const stamp = join(out, '.built');
  if (!existsSync(stamp) || Math.max(newestTs(join(ROOT, 'lib')), newestTs(join(ROOT, 'bin'))) > statSync(stamp).mtimeMs) {
    rmSync(out, { recursive: true, force: true });
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit' });
    writeFileSync(stamp, '');
  }
  return [join(out, 'bin', 'pi-image.js')];
}
