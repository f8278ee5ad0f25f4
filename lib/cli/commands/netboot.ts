// `pi-image netboot <node…|--all> --server IP --tftp-root DIR --nfs-root DIR [--by serial|mac] [--format dir|tar]`:
// TFTP trees and NFS roots for network-booted Pi 4 nodes, plus the dnsmasq config, exports lines and EEPROM
// settings. Glue only: the profile and seeds come from lib/cluster + lib/cloud-init, the work from lib/netboot.
import type { Argv, CommandModule } from 'yargs';
import { writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runCommand, type GlobalOptions } from '../output.ts';
import { InputError } from '../../errors.ts';
import { secretsCreated } from '../secrets-note.ts';
import { nodeOptions, selectedNodes } from '../nodes.ts';
import type { NetbootNode } from '../../netboot/index.ts';

interface NetbootArgs extends GlobalOptions {
  nodes?: string[];
  all?: boolean;
  profile?: string;
  secrets?: string;
  image: string;
  server: string;
  tftpRoot: string;
  nfsRoot: string;
  by: 'serial' | 'mac';
  format: 'dir' | 'tar';
  prefix: number;
  cache?: string;
  offline?: boolean;
}

export const command: CommandModule<GlobalOptions, NetbootArgs> = {
  command: 'netboot [nodes..]',
  describe: 'Make TFTP boot trees and NFS roots for network-booted Pi 4 nodes',
  builder: (y) =>
    nodeOptions(y, 'netboot')
      .option('profile', { type: 'string', describe: 'Cluster profile (default ./pi-image.yaml, else the reference cluster)' })
      .option('secrets', { type: 'string', describe: 'Secrets directory (default: .pi-image-state/<cluster> beside your profile, for the built-in one ~/.local/state/pi-image/<cluster>; env PI_IMAGE_SECRETS)' })
      .option('image', { type: 'string', demandOption: true, describe: 'Base Ubuntu image (raw .img, decompressed)' })
      .option('server', { type: 'string', demandOption: true, describe: 'IPv4 address of the TFTP/NFS server' })
      .option('tftp-root', { type: 'string', demandOption: true, describe: 'TFTP root: DIR/<serial or mac>/' })
      .option('nfs-root', { type: 'string', demandOption: true, describe: 'NFS roots: DIR/<node>/ (or DIR/<node>.tar)' })
      .option('by', { choices: ['serial', 'mac'] as const, default: 'serial' as const, describe: 'Name board directories by serial (TFTP_PREFIX=0) or MAC (2)' })
      .option('format', { choices: ['dir', 'tar'] as const, default: 'dir' as const, describe: 'NFS root as a directory (needs root for owners/devices) or a tar' })
      .option('prefix', { type: 'number', default: 24, describe: 'LAN prefix length for proxy DHCP and exports' })
      .option('cache', { type: 'string', describe: 'Cache directory (the lock\'s artifacts)' })
      .option('offline', { type: 'boolean', default: false, describe: 'Take everything in pi-image.lock from the cache alone' })
      .example('$0 netboot --all --image ubuntu.img --server 192.168.1.10 --tftp-root /srv/tftp --nfs-root /srv/nfs', 'every node, boards found by serial')
      .example('$0 netboot node2 --image ubuntu.img --server 192.168.1.10 --tftp-root /srv/tftp --nfs-root /srv/nfs --by mac --format tar', 'one node by MAC, its root as a tar to unpack as root')
      .example('$0 lock && $0 netboot --all --offline --image ubuntu.img --server 192.168.1.10 --tftp-root /srv/tftp --nfs-root /srv/nfs', 'with pi-image.lock beside the profile: each NFS root carries its role\'s bundle') as unknown as Argv<NetbootArgs>,
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const selection = selectedNodes(argv, 'netboot');
      out.starting('netboot', 'loading the profile'); // before the pipeline's modules load
      const [{ loadProfile, selectNodes }, { loadOrCreateSecrets }, { nodePlan }, { netboot }, { readLock }, { prepareBundles }] = await Promise.all([
        import('../../cluster/profile.ts'), import('../../cluster/secrets.ts'),
        import('../../cluster/plan.ts'), import('../../netboot/index.ts'), import('../../lock/lock.ts'), import('../../lock/prepare.ts'),
      ]);
      const { profile, profilePath } = await loadProfile(argv.profile);
      const names = selectNodes(profile, selection, `profile ${profilePath}`);
      // The lock beside the profile, as build uses it: refused when stale, fetched into the cache (or offline,
      // required there), and each node's NFS root carries its role's bundle.
      const locked = readLock(profilePath);
      if (!locked && argv.offline) throw new InputError(`--offline needs a lock: no pi-image.lock beside ${profilePath}`, 'run `pi-image lock` first');
      const bundles = locked && (await prepareBundles(locked.lock, locked.path, profile, { cacheDir: argv.cache, offline: argv.offline, onProgress: out.progress }));
      const secrets = await loadOrCreateSecrets(profile, { dir: argv.secrets, profilePath, onCreated: (dir) => secretsCreated(out, dir) });
      const nodes: NetbootNode[] = names.map((name) => {
        const n = profile.nodes.find((x) => x.name === name)!;
        // The build's node plan: the same seed and the same kernel arguments (quirks, cgroups, kernel.cmdline).
        const plan = nodePlan(profile, name, secrets);
        const seed = plan.seed;
        return {
          name,
          serial: n.serial,
          mac: n.mac,
          address: n.address === 'dhcp' ? undefined : n.address.ip,
          seed: { 'user-data': seed['user-data'], 'meta-data': seed['meta-data'], 'network-config': seed['network-config'] },
          extraCmdline: plan.kernelArgs,
          bundle: bundles?.[plan.role],
        };
      });
      const res = await netboot({
        image: resolve(argv.image), server: argv.server, tftpRoot: argv.tftpRoot, nfsRoot: argv.nfsRoot,
        nodes, by: argv.by, format: argv.format, prefix: argv.prefix, onProgress: out.progress,
      });
      for (const n of res.nodes) out.step(`${n.name}: ${n.tftpDir}, NFS root ${n.tarFile ?? n.nfsPath}${n.bundle ? `, bundle ${n.bundle.size} bytes` : ''}`);
      // Server files beside the NFS roots (not inside the TFTP root, which boards can read).
      const nfsRoot = resolve(argv.nfsRoot);
      mkdirSync(nfsRoot, { recursive: true });
      const write = (name: string, text: string): string => {
        const p = join(nfsRoot, name);
        writeFileSync(`${p}.partial`, text);
        renameSync(`${p}.partial`, p);
        return p;
      };
      const dnsmasqFile = write('pi-image-dnsmasq.conf', res.dnsmasqConf);
      const exportsFile = write('pi-image.exports', res.exports.join('\n') + '\n');
      for (const n of res.nodes) for (const d of n.export.skippedDevices) out.warn(`${n.name}: device node ${d} not created (needs root)`);
      out.result(
        {
          nodes: res.nodes.map((n) => ({ name: n.name, tftpDir: n.tftpDir, nfsPath: n.nfsPath, tarFile: n.tarFile, cmdline: n.cmdline, ...(n.bundle ? { bundle: n.bundle } : {}) })),
          dnsmasqConf: dnsmasqFile, exportsFile, exports: res.exports, eeprom: res.eeprom,
        },
        [
          ...(argv.format === 'tar' ? ['Extract each tar as root: tar -xpf DIR/<node>.tar -C DIR/<node> --numeric-owner', ''] : []),
          `dnsmasq config: ${dnsmasqFile}   (dnsmasq --conf-file=${dnsmasqFile})`,
          `NFS exports (${exportsFile}), add to /etc/exports:`,
          ...res.exports.map((l) => `  ${l}`),
          'EEPROM settings for each board (rpi-eeprom-config --edit):',
          ...res.eeprom.map((l) => `  ${l}`),
        ].join('\n'),
      );
    }),
};
