// The answers `pi-image init` starts from, apart from the profile renderer (starter.ts) so that the CLI can show
// them in --help without loading the profile parser. No imports: keep it that way.

export interface StarterAnswers {
  /** Cluster name (RFC 1123 label). */
  name: string;
  /** How many nodes; the first is the master. */
  nodes: number;
  /** Node name prefix: node → node1, node2, … */
  prefix: string;
  /** First node's address with prefix, e.g. 10.0.0.11/24; the others follow. */
  address: string;
  gateway: string;
  dns: string[];
  /** OpenSSH public key lines for the admin user. */
  sshKeys: string[];
  user: string;
  /** 'eoan' (19.10.1 + Kubernetes 1.17, the reference) or 'noble' (24.04 + current Kubernetes). */
  release: 'eoan' | 'noble';
}

export const STARTER_DEFAULTS: StarterAnswers = {
  name: 'mycluster',
  nodes: 4,
  prefix: 'node',
  address: '10.0.0.11/24',
  gateway: '10.0.0.1',
  dns: ['10.0.0.1'],
  sshKeys: [],
  user: 'pi',
  release: 'eoan',
};
