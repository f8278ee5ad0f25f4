#!/usr/bin/env node
// The pi-image command line: yargs wiring only; every command lives in lib/cli/commands/.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from '../lib/cli/commands/index.ts';
import { withOptionChecks, usageExit } from '../lib/cli/options.ts';
import { UsageError } from '../lib/errors.ts';

const args = hideBin(process.argv);
const cli = yargs(args)
  .scriptName('pi-image')
  .usage('$0 <command> [options]\n\nTurn a stock Ubuntu Raspberry Pi image into ready-to-flash Pi 4 cluster nodes.')
  .option('json', { type: 'boolean', describe: 'One JSON object per line on stdout, nothing else' })
  .option('verbose', { type: 'boolean', describe: 'More detail; stack traces on errors' })
  .option('quiet', { type: 'boolean', alias: 'q', describe: 'Only errors and results' })
  .demandCommand(1, 'Name a command')
  .strict()
  .recommendCommands()
  .epilog('Typical use:\n  pi-image build node1\n  pi-image flash out/node1/sd.img /dev/sdb')
  .fail((msg, err) => {
    // A misuse of the command line: one line and where to read more, exit 2 (--help prints the whole usage).
    if (err && !(err instanceof UsageError)) throw err;
    const command = args.find((a) => !a.startsWith('-'));
    const known = command !== undefined && commands.some((c) => String(c.command).split(' ')[0] === command);
    usageExit(err ?? new UsageError(msg), known ? command : undefined, args.includes('--json'));
  })
  .help()
  .alias('help', 'h')
  .version();

withOptionChecks(cli);
for (const c of commands) cli.command(c);
await cli.parseAsync();
