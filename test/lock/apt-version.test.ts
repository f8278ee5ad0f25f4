// dpkg version comparison checked against the real `dpkg --compare-versions` on many pairs (edge cases with `~`,
// epochs, revisions, letters, leading zeros, plus pseudo-random pairs); version constraints; malformed versions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { compareVersions, satisfiesVersion, parseVersion } from '../../lib/lock/apt/version.ts';
import { InputError } from '../../lib/errors.ts';

const VERSIONS = [
  '1.0', '1.0-1', '1.0-0', '1.0~rc1', '1.0~rc1-1', '1.0~~', '1.0~', '1.0+b1', '1.0.1', '1.00', '1.0a', '1.0A', '1.0-1ubuntu1',
  '1.0-1ubuntu0.1', '1:0.9', '2:1.0', '0:1.0', '1.2.3-4+deb10u1', '1.2.3-4~bpo10+1', '10', '9', '1.a', '1.+', '1.-0',
  '2.30-0ubuntu2', '2.30-0ubuntu2.1', '19.03.2-0ubuntu1', '1.2.6-0ubuntu1~19.10.1', '1.0.0~rc8+git20190923.3e425f80-0ubuntu1',
  '1.0.0~rc8', '1.0.0', '7.4.0-1', '7.4.0~really7.3-1', '1:2.0~a', '1:2.0', '0.0', '0', '00', '1.0-a', '1.0-A', '1.0-~', '1:3.0:1-1', '1:3.0:2-1',
];

function dpkgCmp(a: string, b: string): number {
  const ok = (op: string): boolean => {
    try {
      execFileSync('dpkg', ['--compare-versions', a, op, b], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  return ok('lt') ? -1 : ok('eq') ? 0 : 1;
}

test('compareVersions agrees with dpkg --compare-versions on every edge pair and 250 random pairs', () => {
  let x = 12345;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % n;
  };
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < VERSIONS.length - 1; i++) pairs.push([VERSIONS[i], VERSIONS[i + 1]], [VERSIONS[i + 1], VERSIONS[i]]);
  const part = (): string => ['0', '1', '01', '2', '10', 'a', 'b', '~', '~~', '+', '.', 'z', '9'][rnd(13)];
  const gen = (): string => `${rnd(4) === 0 ? `${rnd(3)}:` : ''}${1 + rnd(9)}${Array.from({ length: 1 + rnd(4) }, part).join('')}${rnd(2) ? `-${rnd(5)}${part()}` : ''}`;
  for (let i = 0; i < 250; i++) pairs.push([gen(), gen()]);
  let checked = 0;
  for (const [a, b] of pairs) {
    const want = dpkgCmp(a, b);
    const got = Math.sign(compareVersions(a, b));
    assert.is(got, want, `${a} vs ${b}: dpkg says ${want}, we say ${got}`);
    checked++;
  }
  assert.ok(checked > 300);
});

test('the known orderings: ~ before the end, epochs first, missing revision = 0', () => {
  assert.ok(compareVersions('1.0~rc1', '1.0') < 0);
  assert.ok(compareVersions('1.0~~', '1.0~') < 0);
  assert.ok(compareVersions('1:0.1', '9.9') > 0);
  assert.is(compareVersions('1.0', '1.0-0'), 0);
  assert.is(compareVersions('0:1.0', '1.0'), 0);
  assert.ok(compareVersions('1.0-1ubuntu1', '1.0-1') > 0);
});

test('satisfiesVersion: << <= = >= >>', () => {
  assert.ok(satisfiesVersion('2.0', '>=', '2.0'));
  assert.not.ok(satisfiesVersion('2.0~rc1', '>=', '2.0'));
  assert.ok(satisfiesVersion('1.9', '<<', '2.0'));
  assert.not.ok(satisfiesVersion('2.0', '<<', '2.0'));
  assert.ok(satisfiesVersion('2.0', '<=', '2.0-0'));
  assert.ok(satisfiesVersion('1:1.0', '>>', '9.0'));
  assert.ok(satisfiesVersion('1.0-1', '=', '0:1.0-1'));
});

test('malformed versions are errors naming the string', () => {
  for (const bad of ['', 'a1.0', 'x:1.0', '1.0 2', '1.0-a_b', ':1.0']) {
    assert.throws(() => parseVersion(bad, 'Packages: foo: Version'), (e: unknown) => e instanceof InputError && e.message.includes('Packages: foo: Version'), bad);
  }
});

test.run();
