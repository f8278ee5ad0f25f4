// Test helpers for the cluster area: a temporary directory, profile text built from the reference profile,
// and secrets made once per test process (making an RSA CA takes a moment).
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSecrets, type Secrets } from '../../lib/cluster/secrets.ts';
import { BUILTIN_PROFILE } from '../../lib/cluster/profile.ts';

export function tempDir(prefix = 'pi-image-cluster-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const referenceText = (): string => readFileSync(BUILTIN_PROFILE, 'utf8');

let shared: { secrets: Promise<Secrets>; dir: string } | undefined;
/** Secrets for yarpi4 in a temp dir shared by the tests of one process (removed at exit). */
export function sharedSecrets(): Promise<Secrets> {
  if (!shared) {
    const t = tempDir('pi-image-secrets-');
    process.on('exit', t.cleanup);
    shared = { dir: t.dir, secrets: loadOrCreateSecrets({ cluster: { name: 'yarpi4' } }, { dir: join(t.dir, 'yarpi4') }) };
  }
  return shared.secrets;
}
