// `pi-image init [DIR]`: write a commented starter profile (DIR/pi-image.yaml). Asks on a TTY; takes flags otherwise.
import type { CommandModule } from 'yargs';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { join, resolve } from 'node:path';
import { runCommand, type GlobalOptions } from '../output.ts';
import { InputError, UsageError } from '../../errors.ts';
import { STARTER_DEFAULTS, type StarterAnswers } from '../../cluster/starter-defaults.ts';

interface InitArgs extends GlobalOptions {
  dir: string;
  name?: string;
  nodes?: number;
  address?: string;
  gateway?: string;
  dns?: string[];
  sshKey?: string[];
  user?: string;
  release?: 'eoan' | 'noble';
  force?: boolean;
  interactive?: boolean;
}

/** A key given as a file path (~/.ssh/id_ed25519.pub) or as the key text itself. */
function readKey(k: string): string {
  const text = existsSync(k) ? readFileSync(k, 'utf8') : k;
  return text.trim();
}

export const command: CommandModule<GlobalOptions, InitArgs> = {
  command: 'init [dir]',
  describe: 'Write a commented starter cluster profile (DIR/pi-image.yaml)',
  builder: (y) =>
    y
      .positional('dir', { type: 'string', default: '.', describe: 'Where to write pi-image.yaml' })
      .option('name', { type: 'string', describe: `Cluster name (default ${STARTER_DEFAULTS.name})` })
      .option('nodes', { type: 'number', describe: `Number of nodes, the first is the master (default ${STARTER_DEFAULTS.nodes})` })
      .option('address', { type: 'string', describe: `First node's address/prefix; the others follow (default ${STARTER_DEFAULTS.address})` })
      .option('gateway', { type: 'string', describe: `Default gateway (default ${STARTER_DEFAULTS.gateway})` })
      .option('dns', { type: 'string', array: true, describe: 'DNS servers (default: the gateway)' })
      .option('ssh-key', { type: 'string', array: true, describe: 'SSH public key file or text for the admin user' })
      .option('user', { type: 'string', describe: `Admin user name (default ${STARTER_DEFAULTS.user})` })
      .option('release', { choices: ['eoan', 'noble'] as const, describe: 'eoan: Ubuntu 19.10.1 + Kubernetes 1.17 (reference); noble: 24.04 + current Kubernetes' })
      .option('force', { type: 'boolean', describe: 'Overwrite an existing pi-image.yaml' })
      .option('interactive', { type: 'boolean', describe: 'Ask questions (default: when stdin is a TTY and no flags were given)' })
      .example('$0 init', 'ask, then write ./pi-image.yaml')
      .example('$0 init cluster --nodes 3 --address 192.168.1.31/24 --gateway 192.168.1.1 --ssh-key ~/.ssh/id_ed25519.pub', 'no questions'),
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const [{ starterProfile }, { DEFAULT_PROFILE_NAME }] = await Promise.all([import('../../cluster/starter.ts'), import('../../cluster/profile.ts')]);
      const file = join(resolve(argv.dir), DEFAULT_PROFILE_NAME);
      if (existsSync(file) && !argv.force) throw new InputError(`${file} exists`, 'pass --force to overwrite it');
      const a: StarterAnswers = {
        ...STARTER_DEFAULTS,
        ...(argv.name !== undefined && { name: argv.name }),
        ...(argv.nodes !== undefined && { nodes: argv.nodes }),
        ...(argv.address !== undefined && { address: argv.address }),
        ...(argv.gateway !== undefined && { gateway: argv.gateway, dns: [argv.gateway] }),
        ...(argv.dns !== undefined && { dns: argv.dns }),
        ...(argv.user !== undefined && { user: argv.user }),
        ...(argv.release !== undefined && { release: argv.release }),
        sshKeys: (argv.sshKey ?? []).map(readKey),
      };
      const flagsGiven = ['name', 'nodes', 'address', 'gateway', 'dns', 'sshKey', 'user', 'release'].some((k) => (argv as any)[k] !== undefined);
      const ask = argv.interactive ?? (process.stdin.isTTY === true && process.stdout.isTTY === true && !argv.json && !flagsGiven);
      if (ask) {
        const c = await import('../../cluster/starter-checks.ts');
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        let closed = false;
        const ended = new Promise<never>((_, reject) =>
          rl.once('close', () => !closed && reject(new InputError('init: the input ended before every question was answered; nothing written'))),
        );
        ended.catch(() => undefined);
        // Each answer is checked as it is typed; a wrong one is said why and asked again.
        const question = async (label: string, def: string, check: (v: string) => string | undefined) => {
          for (;;) {
            const v = (await Promise.race([rl.question(`${label} [${def}]: `), ended])).trim() || def;
            const problem = check(v);
            if (problem === undefined) return v;
            process.stderr.write(`  ${problem}\n`);
          }
        };
        try {
          a.name = await question('Cluster name', a.name, c.checkClusterName);
          a.release = (await question('Release: eoan (19.10.1 + k8s 1.17) or noble (24.04 + current k8s)', a.release, c.checkRelease)) as StarterAnswers['release'];
          a.nodes = Number(await question('Number of nodes (the first is the master)', String(a.nodes), c.checkNodeCount));
          a.address = await question('First node address/prefix', a.address, (v) => c.checkFirstAddress(v, a.nodes));
          a.gateway = await question('Gateway', a.gateway, (v) => c.checkGateway(v, a.address, a.nodes));
          a.dns = (await question('DNS servers (comma-separated)', a.gateway, c.checkDnsList)).split(',').map((s) => s.trim()).filter(Boolean);
          a.user = await question('Admin user', a.user, c.checkUserName);
          const key = await question(`SSH public key for ${a.user}, a file or the key itself (without one nobody can log in)`, existsSync(`${process.env.HOME}/.ssh/id_ed25519.pub`) ? `${process.env.HOME}/.ssh/id_ed25519.pub` : '', c.checkSshKey);
          a.sshKeys = key ? [readKey(key)] : [];
        } finally {
          closed = true;
          rl.close();
        }
      }
      if (!['eoan', 'noble'].includes(a.release)) throw new InputError(`release "${a.release}": choose eoan or noble`);
      if (a.sshKeys.length === 0) out.warn(`no SSH key given: nobody can log in to the nodes; add one to users[0].sshKeys in ${file} (or pass --ssh-key)`);
      let text: string;
      try {
        text = starterProfile(a);
      } catch (e) {
        // Without questions every answer came from a flag: a bad one is a usage error (exit 2).
        if (!ask && e instanceof InputError) throw new UsageError(e.message, e.hint);
        throw e;
      }
      mkdirSync(resolve(argv.dir), { recursive: true });
      const tmp = `${file}.partial`;
      writeFileSync(tmp, text, { mode: 0o644 });
      renameSync(tmp, file);
      out.result({ profile: file, cluster: a.name, nodes: a.nodes }, `wrote ${file}\nnext: pi-image seed --all --out seed   (review), pi-image build --all`);
    }),
};
