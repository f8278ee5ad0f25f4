// `pi-image flash`: write an image (or a built node's sd.img/ssd.img, found through out/manifest.json) to a drive
// or file, safely and verified.
import type { CommandModule } from 'yargs';
import { statSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import type { ConfirmRequest, FlashResult } from '../../flash/flash.ts';
import { runCommand, formatBytes, UsageError, type GlobalOptions, type Output } from '../output.ts';
import { InputError, fsError } from '../../errors.ts';
import { builtImage, builtNode } from '../nodes.ts';

interface FlashArgs extends GlobalOptions {
  source: string;
  target?: string;
  sd?: string;
  ssd?: string;
  out: string;
  yes?: boolean;
  force?: boolean;
  unmount?: boolean;
  verify: boolean;
  bmap?: string;
}

/** Ask on the terminal; only used when stdin and stderr are TTYs. */
async function askOnTty(req: ConfirmRequest): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    for (const w of req.warnings) process.stderr.write(`warning: ${w}\n`);
    const answer = await rl.question(
      `Write ${formatBytes(req.imageSize)} image to ${req.target} — ${req.description}${req.size ? ` (${formatBytes(req.size)})` : ''}?\n` +
        `Everything on it will be lost. Type "yes" to continue: `,
    );
    return answer.trim() === 'yes';
  } finally {
    rl.close();
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDevice(p: string): boolean {
  try {
    const st = statSync(p);
    return st.isBlockDevice() || st.isCharacterDevice();
  } catch {
    return false;
  }
}

async function one(argv: FlashArgs, out: Output, image: string, target: string, detail?: string, bmap?: string): Promise<FlashResult> {
  const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true && !argv.json;
  const { flash } = await import('../../flash/flash.ts');
  const r = await flash({
    image,
    target,
    bmap,
    verify: argv.verify,
    yes: argv.yes,
    force: argv.force,
    unmount: argv.unmount,
    confirm: interactive
      ? async (req) => {
          out.stopSpinner();
          return askOnTty(req);
        }
      : undefined,
    onWarning: (m) => out.warn(m),
    onProgress: out.progress,
    detail,
  }).catch((e: unknown) => {
    throw fsError(e, target); // a write to the target's fd fails without its name (ENOSPC, EIO)
  });
  if (r.unmounted.length) out.step(`unmounted ${r.unmounted.join(', ')}`);
  out.event('flashed', { ...r });
  out.step(
    `${detail ? `${detail}: ` : ''}wrote ${formatBytes(r.mappedBytes)} of ${formatBytes(r.imageSize)} to ${target} in ${r.writeSeconds.toFixed(1)}s` +
      (r.verified ? `, verified in ${r.verifySeconds.toFixed(1)}s` : ' (not verified)') +
      (r.bmap.source === 'generated' ? ' (mapped on the fly)' : ''),
  );
  return r;
}

export const command: CommandModule<GlobalOptions, FlashArgs> = {
  command: 'flash <source> [target]',
  describe: 'Write an image (or a built node) to an SD card, disk or file; only mapped blocks, then verified',
  builder: (y) =>
    y
      .positional('source', { type: 'string', demandOption: true, describe: 'Image file, or a node name built into --out' })
      .positional('target', { type: 'string', describe: 'Block device (/dev/sdX) or file to write' })
      .option('sd', { type: 'string', describe: 'With a node: where its sd.img goes' })
      .option('ssd', { type: 'string', describe: 'With a node: where its ssd.img goes' })
      .option('out', { type: 'string', default: 'out', describe: 'Build output directory (for node names)' })
      .option('yes', { type: 'boolean', alias: 'y', describe: 'Do not ask; required without a terminal' })
      .option('force', { type: 'boolean', describe: 'Lift soft refusals (internal disk, partition)' })
      .option('unmount', { type: 'boolean', describe: "Unmount the target's filesystems instead of refusing" })
      .option('verify', { type: 'boolean', default: true, describe: 'Read back and check (--no-verify to skip)' })
      .option('bmap', { type: 'string', describe: 'Block map (default: <image>.bmap when present, else mapped on the fly)' })
      .example('$0 flash out/node1/sd.img /dev/sdb', 'write one image, asking first')
      .example('$0 flash node1 --sd /dev/sdb --ssd /dev/sdc --yes', 'both images of a built node')
      .example('$0 flash ubuntu.img copy.img', 'to a file: sparse, verified'),
  handler: (argv) =>
    runCommand(argv, async (out) => {
      if (process.platform !== 'linux' && argv.target && isDevice(argv.target)) {
        throw new InputError(`${argv.target}: writing a device needs Linux (pi-image finds and checks devices with lsblk)`, `flash to a file, then e.g. diskutil unmountDisk ${argv.target} && sudo dd if=FILE of=${argv.target.replace('/dev/disk', '/dev/rdisk')} bs=4m`);
      }
      if (isFile(argv.source)) {
        if (!argv.target) throw new UsageError('name the target: a block device (see pi-image drives) or a file');
        if (argv.sd || argv.ssd) throw new UsageError('--sd/--ssd go with a node name, not an image file');
        const r = await one(argv, out, argv.source, argv.target, undefined, argv.bmap);
        out.result({ results: [r] }, `Flashed ${argv.source} to ${argv.target}.`);
        return;
      }
      const built = await builtNode(argv.out, argv.source);
      if (argv.target) throw new UsageError(`with a node, say where each image goes: --sd DEVICE and/or --ssd DEVICE`);
      if (!argv.sd && !argv.ssd) throw new UsageError('give --sd DEVICE and/or --ssd DEVICE');
      if (argv.bmap) throw new UsageError('--bmap goes with an image file; a node uses its own .bmap files');
      const results: FlashResult[] = [];
      for (const [kind, target] of [['sd', argv.sd], ['ssd', argv.ssd]] as const) {
        if (!target) continue;
        const { image, bmap } = builtImage(built, argv.source, kind);
        results.push(await one(argv, out, image, target, `${argv.source} ${kind}`, isFile(bmap) ? bmap : undefined));
      }
      out.result({ results }, `Flashed ${argv.source}: ${results.map((r) => `${r.image} → ${r.target}`).join(', ')}.`);
    }),
};
