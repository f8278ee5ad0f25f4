#!/usr/bin/env node
// The pi-image command line: yargs wiring only; every command lives in lib/cli/commands/. Starts fast: the command
// modules hold only their options, and load what they run when they run (a bare --version skips yargs too).
import { PACKAGE_VERSION } from '../lib/paths.ts';

const args = process.argv.slice(2);
if (args.length === 1 && args[0] === '--version') {
  process.stdout.write(PACKAGE_VERSION + '\n');
} else {
  const [{ default: yargs }, { commands }, { withOptionChecks, usageExit }, { UsageError }] = await Promise.all([
    import('yargs'),
    import('../lib/cli/commands/index.ts'),
    import('../lib/cli/options.ts'),
    import('../lib/errors.ts'),
  ]);
  const cli = yargs(args)
    .scriptName('pi-image')
    .usage('$0 <command> [options]\n\nTurn a stock Ubuntu Raspberry Pi image into ready-to-flash Pi 4 cluster nodes.')
    .option('json', { type: 'boolean', describe: 'One JSON object per line on stdout, nothing else' })
    .option('verbose', { type: 'boolean', describe: 'More detail; stack traces on errors' })
    .option('quiet', { type: 'boolean', alias: 'q', describe: 'Only errors and results' })
    .demandCommand(1, 'Name a command')
    .strict()
    .recommendCommands()
    .example('$0 build --all', 'every node of the cluster profile into out/')
    .example('$0 flash out/node1/sd.img /dev/sdb', 'write a node\'s SD image, asking first')
    .example('$0 <command> --help', 'options and examples of one command')
    .fail((msg, err) => {
      // A misuse of the command line: one line and where to read more, exit 2 (--help prints the whole usage).
      if (err && !(err instanceof UsageError)) throw err;
      const command = args.find((a) => !a.startsWith('-'));
      const known = command !== undefined && commands.some((c) => String(c.command).split(' ')[0] === command);
      usageExit(err ?? new UsageError(msg), known ? command : undefined, args.includes('--json'));
    })
    .help()
    .alias('help', 'h')
    .version(PACKAGE_VERSION);

  cli.wrap(Math.min(120, cli.terminalWidth()));
  withOptionChecks(cli);
  for (const c of commands) cli.command(c);
  await cli.parseAsync();
}
