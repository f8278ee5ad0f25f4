// Build, end to end: all four reference-cluster nodes from a lookalike Ubuntu 19.10.1 image served over real HTTP on
// 127.0.0.1, checked with the tools the world trusts (sfdisk, fsck.fat, mtools, e2fsck, debugfs, bmaptool).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { createReadStream, statSync, readFileSync, rmSync, existsSync, readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeUbuntuLookalike, tempDir, stagedFile, type Lookalike } from '../helpers/lookalike.ts';
import { build, type BuildResult } from '../../lib/assemble/build.ts';
import { pruneCache } from '../../lib/source/cache.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODES = ['node1', 'node2', 'node3', 'node4'];
const EPOCH = 1577836800; // 2020-01-01

let work: string;
let look: Lookalike;
let server: Server;
let url: string;
let first: BuildResult;
const env = () => ({ cacheDir: join(work, 'cache'), secretsDir: join(work, 'secrets'), sourceDateEpoch: EPOCH, profile: join(ROOT, 'profiles', 'yarpi4.yaml') });

function sh(cmd: string, args: string[], opts: { input?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

test.before(async () => {
  work = tempDir('pi-image-build-');
  look = await makeUbuntuLookalike(work, { variant: 'late2019', legacyCmdline: true });
  execFileSync('xz', ['-T1', '-0', '-k', look.img]);
  const xz = `${look.img}.xz`;
  server = createServer((req, res) => {
    res.writeHead(200, { 'content-length': statSync(xz).size, 'content-type': 'application/x-xz' });
    createReadStream(xz).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  url = `http://127.0.0.1:${port}/ubuntu-lookalike.img.xz`;
  first = await build({ nodes: 'all', image: url, outDir: join(work, 'out'), ...env(), onNotice: (kind, text) => notices.push({ kind, text }) });
});
const notices: { kind: string; text: string }[] = [];

test.after(() => {
  server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('every node gets an SD image and an SSD image, one partition each, with its own disk ids', () => {
  const ids = new Set<string>();
  for (const n of NODES) {
    const node = first.manifest.nodes[n];
    assert.ok(node, `${n} in the manifest`);
    const sd = JSON.parse(sh('sfdisk', ['--json', join(first.outDir, n, 'sd.img')])).partitiontable;
    const ssd = JSON.parse(sh('sfdisk', ['--json', join(first.outDir, n, 'ssd.img')])).partitiontable;
    assert.is(sd.label, 'dos');
    assert.is(sd.partitions.length, 1);
    assert.is(sd.partitions[0].type, 'c');
    assert.is(ssd.partitions.length, 1);
    assert.is(ssd.partitions[0].type, '83');
    assert.is(sd.id, node.sd.diskId);
    assert.is(ssd.id, node.ssd.diskId);
    ids.add(sd.id).add(ssd.id);
  }
  assert.is(ids.size, NODES.length * 2, 'all disk ids differ');
});

test('the SD boot partition passes fsck.fat and holds the seed, config and cmdline', () => {
  for (const n of NODES) {
    const img = join(first.outDir, n, 'sd.img');
    const part = join(work, `${n}-p1.vfat`);
    execFileSync('dd', [`if=${img}`, `of=${part}`, 'bs=1M', 'skip=1', 'status=none']);
    sh('fsck.fat', ['-n', part]);
    const mtype = (f: string) => sh('mtype', ['-i', `${img}@@1M`, `::${f}`]);
    assert.match(mtype('user-data'), /^#cloud-config/);
    assert.match(mtype('meta-data'), new RegExp(`instance-id: ${first.manifest.nodes[n].instanceId}`));
    assert.match(mtype('network-config'), /version: 2/);
    const usercfg = mtype('usercfg.txt');
    assert.match(usercfg, /^kernel=vmlinux$/m);
    assert.match(usercfg, /^initramfs initrd.img followkernel$/m);
    // config.txt keeps every original line.
    assert.is(mtype('config.txt'), stagedFile(look, 'boot', 'config.txt').toString());
    // The cmdline file config.txt really uses (nobtcmd.txt), not the stray cmdline.txt.
    const cmd = mtype('nobtcmd.txt');
    const ssdId = first.manifest.nodes[n].ssd.diskId.slice(2);
    assert.match(cmd, new RegExp(`root=PARTUUID=${ssdId}-01 `));
    assert.match(cmd, /rootfstype=ext4/);
    assert.match(cmd, /rootwait/);
    assert.match(cmd, /usb-storage\.quirks=174c:55aa:u/);
    assert.match(cmd, /cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1/);
    assert.is(mtype('cmdline.txt'), stagedFile(look, 'boot', 'cmdline.txt').toString(), 'unused cmdline.txt untouched');
    // vmlinux is gunzip(vmlinuz).
    const out = join(work, `${n}-vmlinux`);
    execFileSync('mcopy', ['-n', '-i', `${img}@@1M`, '::vmlinux', out]);
    const vmlinuz = stagedFile(look, 'boot', 'vmlinuz');
    assert.ok(gunzipSync(vmlinuz).equals(readFileSync(out)), 'vmlinux = gunzip(vmlinuz)');
  }
});

test('the SSD root passes e2fsck and reads back fstab and the NoCloud config', () => {
  for (const n of NODES) {
    const ssdImg = join(first.outDir, n, 'ssd.img');
    const p1 = JSON.parse(sh('sfdisk', ['--json', ssdImg])).partitiontable.partitions[0].start as number;
    const spec = `${ssdImg}?offset=${p1 * 512}`;
    sh('e2fsck', ['-fn', spec]);
    const fstab = sh('debugfs', ['-R', 'cat /etc/fstab', spec]);
    assert.is(fstab, stagedFile(look, 'root', 'etc/fstab').toString());
    const ds = sh('debugfs', ['-R', 'cat /etc/cloud/cloud.cfg.d/99-fake_cloud.cfg', spec]);
    assert.match(ds, /fs_label: system-boot/);
  }
});

test('bmaptool copy with our block maps reproduces each image, and the manifest checksums hold', () => {
  for (const n of NODES) {
    for (const kind of ['sd', 'ssd'] as const) {
      const img = join(first.outDir, n, `${kind}.img`);
      const copy = join(work, `${n}-${kind}.copy`);
      sh('bmaptool', ['copy', '--bmap', `${img}.bmap`, img, copy]);
      sh('cmp', [img, copy]);
      rmSync(copy);
      const entry = first.manifest.nodes[n][kind];
      assert.is(sha(img), entry.sha256);
      assert.is(statSync(img).size, entry.size);
    }
  }
});

test('a cold build from a local .img.xz builds while xz decompresses and gives the same nodes', async () => {
  const events: string[] = [];
  const cold = await build({ nodes: 'all', image: `${look.img}.xz`, outDir: join(work, 'out-cold'), ...env(), cacheDir: join(work, 'cache-cold'), onProgress: (e) => events.push(e.phase) });
  assert.ok(events.includes('decompress'), 'it decompressed');
  assert.is(cold.manifest.image.sha256, first.manifest.image.sha256);
  assert.equal(cold.manifest.nodes, first.manifest.nodes);
  for (const n of NODES) sh('cmp', [join(first.outDir, n, 'ssd.img'), join(cold.outDir, n, 'ssd.img')]);
  const cached = readdirSync(join(work, 'cache-cold', 'images'));
  assert.ok(cached.some((f) => f.endsWith('.img')), 'the base image is in the cache');
  const sums = cached.find((f) => /\.ssd-checksums-\d+-\d+\.json$/.test(f));
  assert.ok(sums, 'the SSD checksums are kept beside it');
  assert.not.ok(cached.some((f) => f.includes('.tmp-')), 'no temporary file left');
  assert.is(JSON.parse(readFileSync(join(work, 'cache-cold', 'images', sums!), 'utf8')).wholes.length, NODES.length, 'a whole-file sha256 per node');

  // A warm build takes the SSD checksums from that file instead of hashing: they must be the files' real ones.
  const warm = await build({ nodes: 'all', image: `${look.img}.xz`, outDir: join(work, 'out-warm'), ...env(), cacheDir: join(work, 'cache-cold') });
  assert.equal(warm.manifest.nodes, cold.manifest.nodes);
  for (const n of NODES) assert.is(sha(join(warm.outDir, n, 'ssd.img')), warm.manifest.nodes[n].ssd.sha256, `${n}: ssd.img sha256`);
  pruneCache({ cacheDir: join(work, 'cache-cold') });
  assert.ok(existsSync(join(work, 'cache-cold', 'images', sums!)), 'images prune keeps the checksums of a cached image');
});

test('a .img.xz damaged mid-stream fails the build with the cause, and leaves no output and no cache entry', async () => {
  const bad = join(work, 'damaged.img.xz');
  const bytes = readFileSync(`${look.img}.xz`);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff; // the index at the end stays intact: the build starts on the growing file
  writeFileSync(bad, bytes);
  const out = join(work, 'out-damaged');
  try {
    await build({ nodes: 'all', image: bad, outDir: out, ...env(), cacheDir: join(work, 'cache-damaged') });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.match(String(err), /damaged\.img\.xz.*(damaged|corrupt|truncated)/i);
  }
  assert.not.ok(existsSync(out) && readdirSync(out).some((d) => !d.startsWith('.')), 'no final names');
  assert.equal(readdirSync(join(work, 'cache-damaged', 'images')), [], 'nothing in the cache');
});

test('images that hold secrets are 0600 and the build says so once; a profile nobody can log in with is named', () => {
  for (const n of NODES) {
    // Every yarpi4 node's seed holds a secret (the master the CA key, the workers the bootstrap token).
    assert.is(statSync(join(first.outDir, n, 'sd.img')).mode & 0o777, 0o600, `${n}/sd.img`);
    assert.is(statSync(join(first.outDir, n, 'ssd.img')).mode & 0o777, 0o644, `${n}/ssd.img holds no secret`);
    // The block maps hold block ranges and sha256 sums, no secret bytes.
    assert.is(statSync(join(first.outDir, n, 'sd.img.bmap')).mode & 0o777, 0o644);
  }
  const info = notices.filter((x) => x.kind === 'info');
  assert.is(info.length, 1, 'one line');
  assert.match(info[0]!.text, /^sd\.img of node1, node2, node3, node4 hold cluster secrets .*written 0600/);
  const warn = notices.filter((x) => x.kind === 'warning');
  assert.is(warn.length, 1);
  assert.match(warn[0]!.text, /^no user can log in to the nodes: users\[0\]\.sshKeys is empty/);
});

test('--new-token: a fresh token in the node\'s seed and the state directory; the master\'s command named, the token not printed', async () => {
  const secrets = join(work, 'secrets-new-token');
  execFileSync('cp', ['-a', join(work, 'secrets'), secrets]);
  const old = readFileSync(join(secrets, 'bootstrap-token'), 'utf8').trim();
  const said: string[] = [];
  const out = join(work, 'out-new-token');
  await build({ nodes: ['node4'], image: url, outDir: out, ...env(), secretsDir: secrets, newToken: true, onNotice: (_k, text) => said.push(text) });
  const fresh = readFileSync(join(secrets, 'bootstrap-token'), 'utf8').trim();
  assert.match(fresh, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  assert.is.not(fresh, old);
  assert.is(statSync(join(secrets, 'bootstrap-token')).mode & 0o777, 0o600);
  const seed = execFileSync('mcopy', ['-n', '-i', `${join(out, 'node4', 'sd.img')}@@1048576`, '::/user-data', '-']).toString();
  assert.ok(seed.includes(fresh) && !seed.includes(old), 'node4\'s seed joins with the fresh token');
  const line = said.find((l) => l.startsWith('new bootstrap token'))!;
  assert.match(line, /ssh pi@10\.0\.0\.11 sudo kubeadm token create "\$\(cat .*bootstrap-token\)" --ttl 48h$/);
  assert.not.ok(said.join('\n').includes(fresh), 'the token itself is never printed');
});

test('a second build is byte-identical', async () => {
  const again = await build({ nodes: 'all', image: url, outDir: join(work, 'out2'), ...env() });
  assert.is(readFileSync(again.manifestPath, 'utf8'), readFileSync(first.manifestPath, 'utf8'));
  for (const n of NODES) for (const f of ['sd.img', 'ssd.img', 'sd.img.bmap', 'ssd.img.bmap']) {
    sh('cmp', [join(first.outDir, n, f), join(again.outDir, n, f)]);
  }
});

test('building nodes one at a time keeps the earlier ones in the manifest', async () => {
  const out = join(work, 'out-one-by-one');
  await build({ nodes: ['node1'], image: url, outDir: out, ...env() });
  const second = await build({ nodes: ['node2'], image: url, outDir: out, ...env() });
  assert.equal(Object.keys(second.manifest.nodes), ['node1', 'node2']);
  assert.equal(second.manifest.nodes.node1, first.manifest.nodes.node1);
  assert.equal(second.manifest.nodes.node2, first.manifest.nodes.node2);
});

test('an unknown node is refused with the names there are', async () => {
  try {
    await build({ nodes: ['node9'], image: url, outDir: join(work, 'out-bad'), ...env() });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.match(String(err), /no node "node9".*/);
    assert.match((err as { hint?: string }).hint ?? '', /node1, node2, node3, node4/);
  }
});

test('a build killed mid-way leaves nothing under the final names, and the next build succeeds', async () => {
  const out = join(work, 'out-killed');
  mkdirSync(out);
  const args = [join(ROOT, 'bin', 'pi-image.js'), 'build', '--all', '--image', url, '--out', out, '--profile', env().profile,
    '--cache', env().cacheDir, '--secrets', env().secretsDir, '--jobs', '1'];
  const child = spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) } });
  const closed = new Promise<number | null>((r) => child.on('close', r)); // listening from the start: it may end early
  // Wait until it is writing images in its staging directory, then kill it hard.
  let caught = false;
  for (let i = 0; i < 600 && !caught; i++) {
    const staging = readdirSync(out).find((d) => d.startsWith('.staging-') && d.endsWith('-node1'));
    caught = staging !== undefined && existsSync(join(out, staging, 'ssd.img'));
    if (!caught) await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGKILL');
  assert.is(await closed, null, 'killed mid-way, not finished');
  assert.ok(caught, 'it was writing an SSD image when killed');
  assert.equal(readdirSync(out).filter((d) => !d.startsWith('.')), [], 'no final names');
  const again = await build({ nodes: 'all', image: url, outDir: out, ...env() });
  assert.equal(readdirSync(out).filter((d) => !d.startsWith('.')).sort(), ['manifest.json', ...NODES]);
  assert.equal(readdirSync(out).filter((d) => d.startsWith('.')), [], 'the dead staging dir was cleaned up');
  assert.is(readFileSync(again.manifestPath, 'utf8'), readFileSync(first.manifestPath, 'utf8'));
});

test.run();
