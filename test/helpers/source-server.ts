// Test helper: a real HTTP server on 127.0.0.1 for download tests. It serves files with Range / If-Range / ETag,
// and can misbehave on purpose: drop the connection (or stall) after N bytes, answer 503 a number of times,
// redirect, serve slowly, or ignore Range. It counts the body bytes it sent per path, so tests can prove a resume fetched only
// the missing bytes.
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export interface Route {
  /** File to serve. */
  file?: string;
  /** Redirect (302) to this path or URL. */
  redirect?: string;
  /** Drop the connection after this many body bytes, for the next `dropTimes` requests (default 1). */
  dropAfter?: number;
  dropTimes?: number;
  /** With dropAfter: stop sending but keep the connection open (a stalled server) instead of cutting it. */
  stall?: boolean;
  /** Answer 503 to the next `fail503` requests. */
  fail503?: number;
  /** Send at most this many bytes per second (for kill tests). */
  bytesPerSecond?: number;
  /** Ignore Range headers (always 200 with the whole file, and no `Accept-Ranges: bytes`). */
  noRange?: boolean;
  /** Extra response headers (e.g. `Content-Encoding: gzip`, `Content-Type: text/html`). */
  headers?: Record<string, string>;
  /** Status to answer with instead (404, 500...). */
  status?: number;
}

export interface TestServer {
  url: string;
  routes: Map<string, Route>;
  /** Body bytes sent per path. */
  served: Map<string, number>;
  /** Requests seen, with their Range header and the body bytes sent in answer to each. */
  requests: { path: string; range?: string; sent: number }[];
  close(): Promise<void>;
}

export async function startServer(): Promise<TestServer> {
  const routes = new Map<string, Route>();
  const served = new Map<string, number>();
  const requests: { path: string; range?: string; sent: number }[] = [];
  const count = (path: string, n: number): void => {
    served.set(path, (served.get(path) ?? 0) + n);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const request = { path, range: req.headers.range, sent: 0 };
    requests.push(request);
    const r = routes.get(path);
    if (!r || r.status === 404) {
      res.writeHead(404).end('not found');
      return;
    }
    if (r.status) {
      res.writeHead(r.status).end('error');
      return;
    }
    if (r.fail503 && r.fail503 > 0) {
      r.fail503--;
      res.writeHead(503, { 'Retry-After': '0' }).end('busy');
      return;
    }
    if (r.redirect) {
      res.writeHead(302, { Location: r.redirect }).end();
      return;
    }
    const st = statSync(r.file!);
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (range && !r.noRange && (!ifRange || ifRange === etag)) {
      start = Number(range[1]);
      if (start >= st.size) {
        res.writeHead(416, { 'Content-Range': `bytes */${st.size}` }).end();
        return;
      }
      status = 206;
    }
    const headers: Record<string, string | number> = { 'Content-Length': st.size - start, ETag: etag, 'Content-Type': 'application/octet-stream', ...(r.noRange ? {} : { 'Accept-Ranges': 'bytes' }), ...r.headers };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${st.size - 1}/${st.size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const drop = r.dropAfter !== undefined && (r.dropTimes ?? 1) > 0;
    if (drop) r.dropTimes = (r.dropTimes ?? 1) - 1;
    const limit = drop ? r.dropAfter! : Infinity;
    const stream = createReadStream(r.file!, { start, highWaterMark: 16 * 1024 });
    let sent = 0;
    const pace = r.bytesPerSecond;
    const t0 = Date.now();
    stream.on('data', (chunk) => {
      let buf = chunk as Buffer;
      if (sent + buf.length > limit) buf = buf.subarray(0, limit - sent);
      if (buf.length) {
        res.write(buf);
        sent += buf.length;
        request.sent += buf.length;
        count(path, buf.length);
      }
      if (sent >= limit) {
        stream.destroy();
        // Let the bytes reach the socket, then cut the connection mid-body (or leave it hanging: a stall).
        if (!r.stall) setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      if (pace) {
        const due = (sent / pace) * 1000 - (Date.now() - t0);
        if (due > 0) {
          stream.pause();
          setTimeout(() => stream.resume(), due);
        }
      }
    });
    stream.on('end', () => res.end());
    res.on('close', () => stream.destroy());
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    routes,
    served,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
