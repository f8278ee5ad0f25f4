// The CLI's questions under a real terminal (a pty from util-linux `script`), answers typed in as the prompts
// appear: flash asks for exactly `yes` (a `y` leaves the target as it was); init checks each answer as it is
// typed and asks again (a node count of `abc`, a network address, a gateway outside the network, a bad user),
// and the profile it writes holds the corrected answers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliOnPty } from '../helpers/pty.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-prompts-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function files(): { image: string; target: string } {
  const image = join(dir, 'small.img');
  const target = join(dir, 'precious.txt');
  writeFileSync(image, Buffer.alloc(1 << 20, 0x5a));
  writeFileSync(target, 'precious data\n');
  return { image, target };
}

test('flash: "y" is not "yes": the target is left alone and the exit code says refused', async () => {
  const { image, target } = files();
  const s = cliOnPty(['flash', image, target], { cwd: dir });
  await s.expect(/Type "yes" to continue: /);
  s.type('y');
  const r = await s.done();
  assert.is(r.code, 3, r.screen);
  assert.match(r.screen, /cancelled: .*precious\.txt was not written/);
  assert.is(readFileSync(target, 'utf8'), 'precious data\n');
});

test('flash: "yes" writes the image and verifies it', async () => {
  const { image, target } = files();
  const s = cliOnPty(['flash', image, target], { cwd: dir });
  await s.expect(/Everything on it will be lost\. Type "yes" to continue: /);
  s.type('yes');
  const r = await s.done();
  assert.is(r.code, 0, r.screen);
  assert.ok(readFileSync(target).equals(readFileSync(image)), 'the target holds the image');
  assert.match(r.screen, /verified/);
});

test('init: each wrong answer is explained and asked again; the profile holds the corrected answers', async () => {
  const out = join(dir, 'cluster');
  const s = cliOnPty(['init', out], { cwd: dir, env: { HOME: dir } });
  await s.expect(/Cluster name \[mycluster\]: /);
  s.type('Bad_Name');
  await s.expect(/a cluster name is a-z, 0-9 and -.*\n/);
  await s.expect(/Cluster name \[mycluster\]: /);
  s.type('lab');
  await s.expect(/Release: .*\[eoan\]: /);
  s.type('');
  await s.expect(/Number of nodes .*\[4\]: /);
  s.type('abc');
  await s.expect(/give a whole number of nodes from 1 to 64\n/);
  await s.expect(/Number of nodes .*\[4\]: /);
  s.type('0');
  await s.expect(/give a whole number of nodes from 1 to 64\n/);
  await s.expect(/Number of nodes .*\[4\]: /);
  s.type('3');
  await s.expect(/First node address\/prefix \[10\.0\.0\.11\/24\]: /);
  s.type('192.168.5.0/24');
  await s.expect(/is the network or broadcast address/);
  await s.expect(/First node address\/prefix .*: /);
  s.type('192.168.5.254/24');
  await s.expect(/run past the end of the network/);
  await s.expect(/First node address\/prefix .*: /);
  s.type('192.168.5.21');
  await s.expect(/give an address with its prefix/);
  await s.expect(/First node address\/prefix .*: /);
  s.type('192.168.5.21/24');
  await s.expect(/Gateway \[10\.0\.0\.1\]: /);
  s.type('');
  await s.expect(/10\.0\.0\.1 is not a host of the nodes' network 192\.168\.5\.0\/24/);
  await s.expect(/Gateway .*: /);
  s.type('192.168.5.22');
  await s.expect(/is one of the nodes' addresses/);
  await s.expect(/Gateway .*: /);
  s.type('192.168.5.1');
  await s.expect(/DNS servers \(comma-separated\) \[192\.168\.5\.1\]: /);
  s.type('1.1.1.1, dns.example');
  await s.expect(/dns\.example is not an IPv4 address/);
  await s.expect(/DNS servers .*: /);
  s.type('1.1.1.1, 9.9.9.9');
  await s.expect(/Admin user \[pi\]: /);
  s.type('root');
  await s.expect(/cannot be root/);
  await s.expect(/Admin user .*: /);
  s.type('ops');
  await s.expect(/SSH public key for \w+, a file or the key itself \(without one nobody can log in\) \[\]: /);
  s.type(join(dir, 'missing.pub'));
  await s.expect(/missing\.pub: no such file/);
  await s.expect(/SSH public key for .*: /);
  s.type('');
  const r = await s.done();
  assert.is(r.code, 0, r.screen);
  const profile = readFileSync(join(out, 'pi-image.yaml'), 'utf8');
  assert.match(profile, /name: lab\b/);
  assert.match(profile, /192\.168\.5\.21\/24/);
  assert.match(profile, /192\.168\.5\.23\/24/);
  assert.not.match(profile, /192\.168\.5\.24\/24/);
  assert.match(profile, /gateway: 192\.168\.5\.1\b/);
  assert.match(profile, /1\.1\.1\.1, 9\.9\.9\.9/);
  assert.match(profile, /- name: ops\b/);
});

test('init: input ending before the last answer writes nothing and says so', async () => {
  const out = join(dir, 'ended');
  const s = cliOnPty(['init', out], { cwd: dir, env: { HOME: dir } });
  await s.expect(/Cluster name \[mycluster\]: /);
  s.type('\x04'); // Ctrl-D on the terminal: end of input
  const r = await s.done();
  assert.is(r.code, 1, r.screen);
  assert.match(r.screen, /input ended before every question was answered; nothing written/);
  assert.not.ok(existsSync(join(out, 'pi-image.yaml')));
});

test.run();
