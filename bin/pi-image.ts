#!/usr/bin/env node
// The pi-image command line: yargs wiring only; every command lives in lib/cli/commands/.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from '../lib/cli/commands/index.ts';
import { EXIT } from '../lib/cli/output.ts';

const cli = yargs(hideBin(process.argv))
  .scriptName('pi-image')
  .usage('$0 <command> [options]\n\nTurn a stock Ubuntu Raspberry Pi image into ready-to-flash Pi 4 cluster nodes.')
  .option('json', { type: 'boolean', describe: 'One JSON object per line on stdout, nothing else' })
  .option('verbose', { type: 'boolean', describe: 'More detail; stack traces on errors' })
  .option('quiet', { type: 'boolean', alias: 'q', describe: 'Only errors and results' })
  .demandCommand(1, 'Name a command; see pi-image --help')
  .strict()
  .recommendCommands()
  .epilog('Typical use:\n  pi-image build node1\n  pi-image flash out/node1/sd.img /dev/sdb')
  .fail((msg, err, y) => {
    if (err) throw err;
    process.stderr.write(`pi-image: ${msg}\n\n`);
    y.showHelp((s: string) => process.stderr.write(s + '\n'));
    process.exit(EXIT.USAGE);
  })
  .help()
  .alias('help', 'h')
  .version();

for (const c of commands) cli.command(c);
await cli.parseAsync();
