// The lock's pure parts: image references normalised as Docker does, platform matching (arm64 = v8), the Bearer
// challenge parser, the ELF architecture reader, the kubeadm image table, and the bundle's ustar headers read back
// by the real tar.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { formatImageRef, parseImageRef, registryBase } from '../../lib/lock/reference.ts';
import { parseChallenge, platformMatches } from '../../lib/lock/registry.ts';
import { elfArchitecture } from '../../lib/lock/platform.ts';
import { kubeadmImages } from '../../lib/cluster/kubeadm-images.ts';
import { bundleChunks, ustarHeader, type BundlePlan } from '../../lib/lock/bundle.ts';
import { fakeElf, ARM64, AMD64 } from '../helpers/lock-fixtures.ts';

test('image references normalise like Docker: docker.io, library/, latest, host:port kept', () => {
  assert.is(formatImageRef(parseImageRef('nginx')), 'docker.io/library/nginx:latest');
  assert.is(formatImageRef(parseImageRef('calico/node:v3.13.4')), 'docker.io/calico/node:v3.13.4');
  assert.is(formatImageRef(parseImageRef('quay.io/kubernetes-ingress-controller/nginx-ingress-controller:0.30.0')), 'quay.io/kubernetes-ingress-controller/nginx-ingress-controller:0.30.0');
  assert.is(formatImageRef(parseImageRef('127.0.0.1:5000/k8s/pause:3.1')), '127.0.0.1:5000/k8s/pause:3.1');
  const d = `sha256:${'a'.repeat(64)}`;
  assert.equal(parseImageRef(`metallb/speaker@${d}`), { registry: 'docker.io', name: 'metallb/speaker', tag: undefined, digest: d });
  assert.is(registryBase('docker.io'), 'https://registry-1.docker.io');
  assert.is(registryBase('127.0.0.1:5000'), 'http://127.0.0.1:5000');
  assert.is(registryBase('registry.k8s.io'), 'https://registry.k8s.io');
  assert.throws(() => parseImageRef('Bad/Name:x'), /not an image reference/);
});

test('platforms: arm64 matches v8 or no variant, arm/v7 needs v7, amd64 never arm64', () => {
  const arm64 = { os: 'linux', architecture: 'arm64' };
  assert.ok(platformMatches({ os: 'linux', architecture: 'arm64' }, arm64));
  assert.ok(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, arm64));
  assert.not.ok(platformMatches({ os: 'linux', architecture: 'amd64' }, arm64));
  assert.not.ok(platformMatches({ os: 'windows', architecture: 'arm64' }, arm64));
  assert.ok(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v7' }));
  assert.not.ok(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' }));
});

test('the Bearer challenge is parsed as Docker Hub sends it', () => {
  const c = parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:calico/node:pull"');
  assert.is(c.scheme, 'bearer');
  assert.equal(c.params, { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:calico/node:pull' });
});

test('ELF headers name their architecture', () => {
  assert.is(elfArchitecture(fakeElf(ARM64, 'x')), 'arm64');
  assert.is(elfArchitecture(fakeElf(AMD64, 'x')), 'amd64');
  assert.is(elfArchitecture(Buffer.from('#!/bin/sh\n')), undefined);
});

test('kubeadm 1.17 pulls pause 3.1, etcd 3.4.3-0 and CoreDNS 1.6.5 from the configured repository', () => {
  const imgs = kubeadmImages('1.17.17');
  assert.equal(imgs.map((i) => i.ref), [
    'registry.k8s.io/kube-apiserver:v1.17.17',
    'registry.k8s.io/kube-controller-manager:v1.17.17',
    'registry.k8s.io/kube-scheduler:v1.17.17',
    'registry.k8s.io/etcd:3.4.3-0',
    'registry.k8s.io/kube-proxy:v1.17.17',
    'registry.k8s.io/pause:3.1',
    'registry.k8s.io/coredns:1.6.5',
  ]);
  assert.equal(imgs.filter((i) => i.controlPlane).length, 4);
  assert.throws(() => kubeadmImages('1.99.0'), /kubernetes\.version 1\.99\.0: no kubeadm image list for 1\.99/);
});

test('the bundle tar (ustar headers written here) is read back by GNU tar, long names included', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pi-image-ustar-'));
  try {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeFileSync(a, 'hello\n');
    writeFileSync(b, Buffer.alloc(3000, 7));
    const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    const long = `pi-image-bundle/${'deep/'.repeat(25)}calico_node_v3.13.4.tar`;
    const plan: BundlePlan = {
      role: 'worker',
      items: [
        { kind: 'file', name: 'pi-image-bundle/files/a', path: a, size: 6, sha256: sha(a), source: 'http://x/a' },
        { kind: 'image', name: long, path: b, size: 3000, sha256: sha(b), source: 'x/calico/node:v3.13.4' },
      ],
      index: 'index\n',
      size: 512 + 512 + 512 + 512 + 512 + 3072 + 1024,
      key: 'unused here',
    };
    const tarFile = join(dir, 'bundle.tar');
    const chunks: Buffer[] = [];
    for (const c of bundleChunks(plan)) chunks.push(Buffer.from(c)); // a chunk is a view: copy before the next
    writeFileSync(tarFile, Buffer.concat(chunks));
    assert.is(readFileSync(tarFile).length, plan.size);
    assert.equal(execFileSync('tar', ['-tf', tarFile], { encoding: 'utf8' }).trim().split('\n'), ['pi-image-bundle/index.tsv', 'pi-image-bundle/files/a', long]);
    assert.is(execFileSync('tar', ['-xOf', tarFile, 'pi-image-bundle/files/a'], { encoding: 'utf8' }), 'hello\n');
    assert.is(ustarHeader('x', 1).length, 512);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
