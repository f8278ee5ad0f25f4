// The one line every command that may make a cluster's secrets (build, seed, netboot) prints when it did:
// where they are and that they must be kept. Never their content.
import type { Output } from './output.ts';

/** Say once, when a run made a cluster's secrets, where they are and that they must be kept. */
export function secretsCreated(out: Output, dir: string): void {
  if (out.json) {
    out.event('secrets', { dir, created: true });
    return;
  }
  // Shown even with --quiet: losing them means rebuilding every node of the cluster.
  out.stopSpinner();
  process.stderr.write(`✔ made new cluster secrets (CA, bootstrap token, keys) in ${dir}: keep them (back them up); every node of this cluster must be built with the same ones\n`);
}
