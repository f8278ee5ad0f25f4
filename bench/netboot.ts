// Netboot benchmark, the CLI as a user runs it: `pi-image netboot node1 --format tar` (exports the ext4 root of the
// realistic image, ~1.5 GiB used, to NFS-ROOT/node1.tar with our reader, no mounts, plus the TFTP boot files)
// against `debugfs -R 'rdump / DIR'` of the same partition, in alternating rounds with the image in the page cache
// (bench/lib/measure.ts). Target: ours >= 0.8x debugfs' speed (time ratio <= 1.25x). Usage: npx tsx bench/netboot.ts
// [--rounds N]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { realisticImage } from './lib/realistic-image.ts';
import { cli, machineLine, measure, memoryLine, ratioLine, rounds, roundsArg, sync, ROOT, SBIN_PATH, startLine } from './lib/measure.ts';

const n = roundsArg(3);
const ri = await realisticImage();
const pi = cli();
mkdirSync(join(ROOT, 'bench', '.tmp'), { recursive: true });
const dir = mkdtempSync(join(ROOT, 'bench', '.tmp', 'netboot-'));
try {
  console.log(startLine('netboot'));
  execFileSync('sh', ['-c', `cat "${ri.img}" > /dev/null`]);
  // netboot names board directories by serial: the reference profile with one for node1.
  const profile = join(dir, 'profile.yaml');
  writeFileSync(profile, readFileSync(join(ROOT, 'profiles', 'yarpi4.yaml'), 'utf8').replace('{ name: node1, role: master, address: 10.0.0.11/24 }', '{ name: node1, role: master, address: 10.0.0.11/24, serial: "1234abcd" }'));
  const rd = join(dir, 'rdump');
  const res = await rounds(n, [
    {
      name: "debugfs -R 'rdump / DIR'",
      run: () => {
        mkdirSync(rd);
        // debugfs reads the partition inside the disk image through its io_options syntax `FILE?offset=BYTES`.
        return measure('debugfs', ['-R', `rdump / ${rd}`, `${ri.img}?offset=${ri.rootStart}`], { env: { PATH: SBIN_PATH } });
      },
      after: () => {
        rmSync(rd, { recursive: true, force: true });
        sync();
      },
    },
    {
      name: 'pi-image netboot --format tar',
      run: () =>
        measure(pi[0], [...pi.slice(1), 'netboot', 'node1', '--profile', profile, '--secrets', join(dir, 'secrets'), '--image', ri.img, '--server', '127.0.0.1',
          '--tftp-root', join(dir, 'tftp'), '--nfs-root', join(dir, 'nfs'), '--format', 'tar', '--quiet']),
      after: () => {
        rmSync(join(dir, 'tftp'), { recursive: true, force: true });
        rmSync(join(dir, 'nfs'), { recursive: true, force: true });
        sync();
      },
    },
  ]);
  console.log(`  ${ratioLine(res, 'pi-image netboot --format tar', "debugfs -R 'rdump / DIR'").text}   (target <= 1.25x)`);
  console.log(`  ${memoryLine(res, 'pi-image netboot --format tar').text}`);
  console.log(`load at the end: ${machineLine()}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
