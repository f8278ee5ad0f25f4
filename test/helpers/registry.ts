// Test helper: a real distribution registry (Debian's docker-registry) on 127.0.0.1, optionally behind Bearer
// token auth answered by a small token endpoint (JWT RS256 signed with a key and certificate openssl makes at test
// time), and images pushed to it with skopeo from OCI layouts written here (index.json, blobs, a tiny tar layer).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as netServer } from 'node:net';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TokenServer {
  url: string;
  /** Token requests seen (scope strings). */
  requests: string[];
  close(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** A token endpoint that grants pull and push on whatever scope is asked, as a registry's `auth: token:` expects. */
async function startTokenServer(dir: string, service: string, issuer: string): Promise<{ server: TokenServer; cert: string }> {
  const key = join(dir, 'token.key');
  const cert = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=pi-image-test-token'], { stdio: 'ignore' });
  const der = execFileSync('openssl', ['x509', '-in', cert, '-outform', 'DER']);
  const pk = createPrivateKey(readFileSync(key));
  const requests: string[] = [];
  const http: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const scopes = u.searchParams.getAll('scope');
    requests.push(scopes.join(' '));
    const access = scopes.flatMap((s) => {
      const [type, name] = s.split(':');
      return type === 'repository' && name ? [{ type, name, actions: ['pull', 'push'] }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] };
    const claims = { iss: issuer, sub: 'test', aud: service, exp: now + 600, nbf: now - 10, iat: now, jti: `${now}-${requests.length}`, access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${b64url(sign('sha256', Buffer.from(input), pk))}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 600 }));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/token`;
  return { server: { url, requests, close: () => new Promise<void>((r) => http.close(() => r())) }, cert };
}

export interface Registry {
  /** host:port */
  host: string;
  token?: TokenServer;
  stop(): Promise<void>;
}

/** Start `docker-registry serve` with storage in `dir`; with `auth`, behind Bearer tokens. */
export async function startRegistry(dir: string, opts: { auth?: boolean } = {}): Promise<Registry> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let token: TokenServer | undefined;
  let authCfg = '';
  if (opts.auth) {
    const t = await startTokenServer(dir, 'pi-image-test-registry', 'pi-image-test-issuer');
    token = t.server;
    authCfg = `auth:\n  token:\n    realm: ${t.server.url}\n    service: pi-image-test-registry\n    issuer: pi-image-test-issuer\n    rootcertbundle: ${t.cert}\n`;
  }
  const cfg = join(dir, 'config.yml');
  writeFileSync(
    cfg,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${authCfg}`,
  );
  const proc: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`http://${host}/v2/`);
      if (r.status === 200 || r.status === 401) break;
    } catch {
      /* not up yet */
    }
    if (proc.exitCode !== null || i > 100) throw new Error(`docker-registry did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    token,
    stop: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.once('exit', r)));
      await token?.close();
    },
  };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface OciImage {
  dir: string;
  tag: string;
  /** Digests of the platform manifests by architecture. */
  manifests: Record<string, string>;
  /** Digest of the index (multi-platform layouts). */
  index?: string;
  layers: Record<string, { digest: string; size: number }>;
}

/**
 * A layer made by the real tar: a file naming `arch`, gzip'd; with `randomBytes`, also that many random bytes and
 * left uncompressed (gzip gains nothing on them), written through files so big layers are never in memory.
 */
function layer(work: string, arch: string, extra: number, blobs: string, randomBytes = 0, busybox?: string): { digest: string; size: number; diffId: string; mediaType: string } {
  const root = join(work, `layer-${arch}`);
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc', 'pi-image-test'), `built for ${arch}\n` + 'x'.repeat(extra));
  if (busybox) {
    mkdirSync(join(root, 'bin'), { recursive: true });
    copyFileSync(busybox, join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
  }
  if (randomBytes) execFileSync('dd', ['if=/dev/urandom', `of=${join(root, 'etc', 'random')}`, 'bs=1M', `count=${Math.ceil(randomBytes / 2 ** 20)}`, 'status=none']);
  const tarPath = join(work, `layer-${arch}.tar`);
  execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', root, '-cf', tarPath, ...(busybox ? ['bin', 'etc'] : ['etc'])]);
  const sum = (p: string) => execFileSync('sha256sum', [p], { encoding: 'utf8' }).split(' ')[0]!;
  const diffId = `sha256:${sum(tarPath)}`;
  if (randomBytes) {
    const d = sum(tarPath);
    execFileSync('mv', [tarPath, join(blobs, d)]);
    return { digest: `sha256:${d}`, size: statSync(join(blobs, d)).size, diffId, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
  }
  const gz = gzipSync(readFileSync(tarPath));
  const d = sha(gz);
  writeFileSync(join(blobs, d), gz);
  return { digest: `sha256:${d}`, size: gz.length, diffId, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' };
}

/** One variant that really runs: a static busybox (the host's, built for `arch`) at /bin/busybox, started as `cmd`. */
export interface RunnableVariant {
  arch: string;
  busybox: string;
  cmd: string[];
}

/**
 * An OCI image layout in `dir` holding `tag` for the given architectures: with two or more an image index
 * (manifests with platforms) is the tagged object; with one, the lone manifest is.
 */
export function makeOciLayout(dir: string, tag: string, arches: string[], opts: { layerBytes?: number; randomBytes?: number; run?: RunnableVariant } = {}): OciImage {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => {
    const d = sha(b);
    writeFileSync(join(blobs, d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const manifests: Record<string, string> = {};
  const layers: OciImage['layers'] = {};
  const descs: unknown[] = [];
  for (const arch of arches) {
    const run = opts.run?.arch === arch ? opts.run : undefined;
    const l = layer(dir, arch, opts.layerBytes ?? 100, blobs, arch === 'arm64' ? opts.randomBytes : undefined, run?.busybox);
    const lb = { digest: l.digest, size: l.size };
    layers[arch] = lb;
    const config = put(Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', config: { Cmd: run?.cmd ?? ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: [l.diffId] } })));
    const man = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: l.mediaType, ...lb }],
      }),
    );
    const m = put(man);
    manifests[arch] = m.digest;
    descs.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, platform: { architecture: arch, os: 'linux' } });
  }
  let top: Record<string, unknown>;
  let index: string | undefined;
  if (arches.length > 1) {
    const idx = put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: descs })));
    index = idx.digest;
    top = { mediaType: 'application/vnd.oci.image.index.v1+json', ...idx };
  } else {
    const { platform: _p, ...d } = descs[0] as Record<string, unknown>;
    top = d;
  }
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }] }));
  return { dir, tag, manifests, index, layers };
}

/** Push an OCI layout to the registry with skopeo (all platforms); async, so a token endpoint in this process answers. */
export function pushImage(img: OciImage, registry: Registry, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('skopeo', ['copy', '--all', '--quiet', '--dest-tls-verify=false', `oci:${img.dir}:${img.tag}`, `docker://${registry.host}/${name}:${img.tag}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`skopeo copy to ${registry.host}/${name}: ${err.trim()}`))));
  });
}
