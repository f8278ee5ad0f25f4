// http-body's GET against node's HTTP and HTTPS servers on 127.0.0.1: Content-Length, chunked (chunk boundaries
// split across reads) and until-close bodies arrive whole and in order, also when the reader holds the socket back
// and over TLS (a certificate made by openssl here; an untrusted one is refused); a redirect to another origin
// drops Authorization, a redirect loop and a body cut short are errors saying so; getSmall's limit, and an abort.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcp } from 'node:net';
import { createServer as createHttps } from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { getBody, getSmall } from '../../lib/source/http-body.ts';

const blob = randomBytes((5 << 20) + 12345);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const seen: Record<string, string | undefined> = {};
let other = '';
const handler = (req: IncomingMessage, res: ServerResponse) => {
  seen[req.url!] = req.headers.authorization;
  if (req.url === '/length') return res.writeHead(200, { 'content-length': blob.length }).end(blob);
  if (req.url === '/chunked') {
    res.writeHead(200, { 'transfer-encoding': 'chunked' });
    // Odd-sized writes, each a chunk of its own.
    let i = 0;
    const next = () => {
      if (i >= blob.length) return res.end();
      const n = Math.min(blob.length - i, 1 + ((i * 7919) % 300_000));
      res.write(blob.subarray(i, i + n), next);
      i += n;
    };
    return next();
  }
  if (req.url === '/cut') {
    res.writeHead(200, { 'content-length': blob.length });
    return res.write(blob.subarray(0, 1 << 20), () => res.destroy());
  }
  if (req.url === '/away') return res.writeHead(307, { location: `${other}/length` }).end();
  if (req.url === '/loop') return res.writeHead(302, { location: '/loop' }).end();
  res.writeHead(404).end('no');
};
const server = createServer(handler);
// TLS: a certificate for localhost made by openssl at test time; the client trusts it through `ca`.
const certDir = mkdtempSync(join(tmpdir(), 'pi-image-tls-'));
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
const cert = readFileSync(join(certDir, 'cert.pem'));
const tls = createHttps({ key: readFileSync(join(certDir, 'key.pem')), cert }, handler);
const server2 = createServer(handler);
// A server that sends its body and closes, with no length and no chunking.
const closer = createTcp((s) => {
  s.on('data', () => undefined);
  s.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
  s.end(blob);
});
let base = '';
let closeUrl = '';
let tlsBase = '';
const port = (s: { address(): unknown }) => (s.address() as { port: number }).port;

test.before(async () => {
  for (const s of [server, server2, closer, tls]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  tlsBase = `https://localhost:${port(tls)}`;
  base = `http://127.0.0.1:${port(server)}`;
  other = `http://localhost:${port(server2)}`;
  closeUrl = `http://127.0.0.1:${port(closer)}/`;
});
test.after(() => {
  server.close();
  server2.close();
  closer.close();
  tls.close();
  rmSync(certDir, { recursive: true, force: true });
});

async function collect(url: string, slow = false, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> {
  const res = await getBody(url, headers, url.startsWith('https:') ? { ca: cert } : {});
  const parts: Buffer[] = [];
  let n = 0;
  await res.read((c) => {
    parts.push(Buffer.from(c)); // the view is reused after the call
    if (slow && n++ % 7 === 0) return sleep(2);
  });
  return { status: res.status, body: Buffer.concat(parts) };
}

test('Content-Length, chunked and until-close bodies arrive whole, also when the reader holds back', async () => {
  for (const url of [`${base}/length`, `${base}/chunked`, closeUrl]) {
    for (const slow of [false, true]) {
      const r = await collect(url, slow);
      assert.is(r.status, 200, url);
      assert.is(r.body.length, blob.length, url);
      assert.is(sha(r.body), sha(blob), `${url} slow=${slow}`);
    }
  }
});

test('over TLS too: Content-Length and chunked bodies whole and in order, also when the reader holds back', async () => {
  for (const url of [`${tlsBase}/length`, `${tlsBase}/chunked`]) {
    for (const slow of [false, true]) {
      const r = await collect(url, slow);
      assert.is(r.status, 200, url);
      assert.is(sha(r.body), sha(blob), `${url} slow=${slow}`);
    }
  }
  await getBody(`${tlsBase}/length`, {}).then(
    () => assert.unreachable('an untrusted certificate must fail'),
    (e: Error) => assert.match(e.message, /self.signed|certificate/i),
  );
});

test('a redirect to another origin drops Authorization; a loop and a short body are errors', async () => {
  const r = await collect(`${base}/away`, false, { Authorization: 'Bearer secret' });
  assert.is(sha(r.body), sha(blob));
  assert.is(seen['/away'], 'Bearer secret');
  assert.is(seen['/length'], undefined, 'the other origin saw no token');
  await getBody(`${base}/loop`, {}).then(
    () => assert.unreachable('a redirect loop must fail'),
    (e: Error) => assert.match(e.message, /more than 10 redirects \(a redirect loop\?\)/),
  );
  const res = await getBody(`${base}/cut`, {});
  let got = 0;
  await res.read((c) => void (got += c.length)).then(
    () => assert.unreachable('a cut body must fail'),
    (e: Error) => assert.match(e.message, /connection closed with \d+ bytes of the body still to come/),
  );
  assert.ok(got > 0 && got < blob.length);
  const nf = await getBody(`${base}/nothing`, {});
  assert.is(nf.status, 404);
  nf.discard();
});

test('getSmall reads a body whole up to its limit; an abort stops a body mid-way with the signal\'s reason', async () => {
  const all = await getSmall(`${base}/chunked`, {});
  assert.ok(all.ok);
  assert.is(sha(all.bytes), sha(blob));
  await getSmall(`${base}/length`, {}, { max: 1 << 20 }).then(
    () => assert.unreachable('an answer over the limit must fail'),
    (e: Error) => assert.match(e.message, /\/length: an answer of more than 1048576 bytes/),
  );
  const ctl = new AbortController();
  const res = await getBody(`${base}/chunked`, {}, { signal: ctl.signal });
  let got = 0;
  await res
    .read((c) => {
      got += c.length;
      if (got > 1 << 20) ctl.abort(new Error('stopped by the test'));
    })
    .then(
      () => assert.unreachable('an aborted body must fail'),
      (e: Error) => assert.is(e.message, 'stopped by the test'),
    );
  assert.ok(got > 1 << 20 && got < blob.length, `${got} bytes before the abort took`);
});

test.run();
