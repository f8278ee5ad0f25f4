// An OCI distribution API client (what Docker Hub, quay.io, registry.k8s.io and the distribution registry speak):
// GET /v2/<name>/manifests/<ref> accepting an OCI index, a Docker manifest list and OCI/Docker manifests; the
// `WWW-Authenticate: Bearer` challenge answered from the token endpoint it names, then retried; blobs streamed
// to disk through a lean HTTP/1.1 reader (source/http-body.ts), sha256-verified as they stream (resumable:
// blob-fetch.ts). resolveImage picks the platform's manifest from an index, or checks a lone manifest's config,
// and refuses an image with no variant for the platform.
// Invariants: every manifest's bytes are checked against the digest they are addressed by; tokens never leave
// the registry's origin (source/http-body.ts drops Authorization on a cross-origin redirect, e.g. to a blob CDN).
import { createHash } from 'node:crypto';
import { LockRefusal } from './errors.ts';
import { formatImageRef, registryBase, type ImageRef } from './reference.ts';
import type { LockBlob, LockImage } from './lockfile.ts';
import { fetchBlob } from './blob-fetch.ts';
import { getBody, getSmall, type BodyResponse, type SmallResponse } from '../source/http-body.ts';
import type { OnProgress } from '../progress.ts';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;
const ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(', ');
const USER_AGENT = 'pi-image (+https://github.com/pi-image)';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  return { os: os!, architecture: architecture!, ...(variant ? { variant } : {}) };
}
export const formatPlatform = (p: Platform): string => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

/** Does an index entry's platform (or a config's os/architecture/variant) run on `want`? arm64 means v8. */
export function platformMatches(have: Partial<Platform> | undefined, want: Platform): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return false;
  const norm = (v: string | undefined) => (want.architecture === 'arm64' && (v === undefined || v === '' || v === 'v8') ? 'v8' : v ?? '');
  return want.variant === undefined ? want.architecture !== 'arm64' || norm(have.variant) === 'v8' : norm(have.variant) === norm(want.variant);
}

interface Manifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Parse `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  const params: Record<string, string> = {};
  if (!m) return { scheme: '', params };
  for (const p of m[2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[p[1]!.toLowerCase()] = p[2] ?? p[3] ?? '';
  return { scheme: m[1]!.toLowerCase(), params };
}

export interface RegistryClientOptions {
  /** Where refusals point (the profile key of the manifest or image). */
  retries?: number;
  backoffMs?: number;
  onProgress?: OnProgress;
}

export class RegistryClient {
  private readonly tokens = new Map<string, string>();
  constructor(private readonly opts: RegistryClientOptions = {}) {}

  /** One authenticated GET against a registry's v2 API; answers a Bearer challenge once. */
  get(ref: ImageRef, path: string, ctx: { what: string; key: string }, headers: Record<string, string> = {}): Promise<SmallResponse> {
    return this.authed(
      ref,
      path,
      ctx,
      (url, auth) => getSmall(url, { 'User-Agent': USER_AGENT, ...headers, ...auth }),
      () => undefined, // read already
    );
  }

  /** A blob's body through source/http-body.ts (gigabytes: one reused read buffer), authenticated like get(). */
  blobBody(ref: ImageRef, digest: string, ctx: { what: string; key: string }, headers: Record<string, string> = {}): Promise<BodyResponse> {
    return this.authed(
      ref,
      `blobs/${digest}`,
      ctx,
      (url, auth) => getBody(url, { 'User-Agent': USER_AGENT, ...headers, ...auth }),
      (res) => res.discard(),
    );
  }

  /** `send` with the repository's token (when one is known); a Bearer challenge is answered once, then sent again. */
  private async authed<T extends { status: number; headers: { get(name: string): string | null } }>(
    ref: ImageRef,
    path: string,
    ctx: { what: string; key: string },
    send: (url: string, auth: Record<string, string>) => Promise<T>,
    drop: (res: T) => unknown,
  ): Promise<T> {
    const url = `${registryBase(ref.registry)}/v2/${ref.name}/${path}`;
    const tokenKey = `${ref.registry}|${ref.name}`;
    const attempt = async (): Promise<T> => {
      const t = this.tokens.get(tokenKey);
      try {
        return await send(url, t ? { Authorization: `Bearer ${t}` } : {});
      } catch (err) {
        const msg = (err as Error).message;
        throw new LockRefusal(ctx.what, url, ctx.key, /redirect/i.test(msg) ? `redirect loop (${msg})` : `cannot reach the registry: ${msg}`);
      }
    };
    let res = await attempt();
    if (res.status === 401) {
      await drop(res);
      const ch = parseChallenge(res.headers.get('www-authenticate') ?? '');
      if (ch.scheme !== 'bearer' || !ch.params.realm) throw new LockRefusal(ctx.what, url, ctx.key, `HTTP 401 without a Bearer challenge (${res.headers.get('www-authenticate') ?? 'none'})`);
      this.tokens.set(tokenKey, await this.token(ch.params, ref, ctx));
      res = await attempt();
    }
    return res;
  }

  private async token(p: Record<string, string>, ref: ImageRef, ctx: { what: string; key: string }): Promise<string> {
    const u = new URL(p.realm!);
    if (p.service) u.searchParams.set('service', p.service);
    u.searchParams.set('scope', p.scope ?? `repository:${ref.name}:pull`);
    let res: SmallResponse;
    try {
      res = await getSmall(u.toString(), { 'User-Agent': USER_AGENT });
    } catch (err) {
      throw new LockRefusal(ctx.what, u.toString(), ctx.key, `token endpoint: ${(err as Error).message}`);
    }
    if (!res.ok) throw new LockRefusal(ctx.what, u.toString(), ctx.key, `token endpoint answered HTTP ${res.status}`);
    let body: { token?: string; access_token?: string } = {};
    try {
      body = (res.json() ?? {}) as typeof body;
    } catch {
      /* not JSON: no token, said below */
    }
    const t = body.token ?? body.access_token;
    if (!t) throw new LockRefusal(ctx.what, u.toString(), ctx.key, 'token endpoint gave no token');
    return t;
  }

  /** A manifest or index by tag or digest, its bytes checked against the digest. */
  async manifest(ref: ImageRef, reference: string, ctx: { what: string; key: string }): Promise<Manifest> {
    const url = `${registryBase(ref.registry)}/v2/${ref.name}/manifests/${reference}`;
    const res = await this.get(ref, `manifests/${reference}`, ctx, { Accept: ACCEPT });
    if (res.status === 404) throw new LockRefusal(ctx.what, url, ctx.key, 'HTTP 404: no such image or tag in the registry');
    if (!res.ok) throw new LockRefusal(ctx.what, url, ctx.key, `HTTP ${res.status} ${res.statusText}`);
    const bytes = res.bytes;
    const digest = digestOf(bytes);
    const claimed = res.headers.get('docker-content-digest');
    if (reference.startsWith('sha256:') && digest !== reference) throw new LockRefusal(ctx.what, url, ctx.key, `manifest bytes hash to ${digest}, not the ${reference} asked for`);
    if (claimed && claimed.startsWith('sha256:') && claimed !== digest) throw new LockRefusal(ctx.what, url, ctx.key, `manifest bytes hash to ${digest}, the registry says ${claimed}`);
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    try {
      const j = JSON.parse(bytes.toString('utf8')) as { mediaType?: string };
      if (j.mediaType) mediaType = j.mediaType;
    } catch {
      throw new LockRefusal(ctx.what, url, ctx.key, 'the manifest is not JSON');
    }
    return { bytes, mediaType, digest };
  }

  /** Resolve `ref` for `platform` to its manifest, config and layers; the manifest and config go to `keep`. */
  async resolveImage(
    ref: ImageRef,
    platform: Platform,
    ctx: { key: string },
    keep?: (digest: string, bytes: Buffer) => void,
  ): Promise<Omit<LockImage, 'key'>> {
    const id = formatImageRef(ref);
    const c = { what: `image ${id}`, key: ctx.key };
    const url = `${registryBase(ref.registry)}/v2/${ref.name}/manifests/${ref.digest ?? ref.tag}`;
    let m = await this.manifest(ref, ref.digest ?? ref.tag!, c);
    let index: string | undefined;
    if (m.mediaType === MEDIA.ociIndex || m.mediaType === MEDIA.dockerList) {
      index = m.digest;
      const list = JSON.parse(m.bytes.toString('utf8')) as { manifests?: { digest: string; mediaType?: string; platform?: Platform }[] };
      const entries = list.manifests ?? [];
      const hit = entries.find((e) => platformMatches(e.platform, platform));
      if (!hit) {
        const have = entries.map((e) => (e.platform ? formatPlatform(e.platform) : '?')).join(', ') || 'none';
        throw new LockRefusal(c.what, url, c.key, `no variant for ${formatPlatform(platform)} (the index has: ${have})`, `pick an image built for ${formatPlatform(platform)} (change ${c.key}), then run \`pi-image lock\``);
      }
      m = await this.manifest(ref, hit.digest, c);
    }
    if (m.mediaType !== MEDIA.ociManifest && m.mediaType !== MEDIA.dockerManifest) {
      throw new LockRefusal(c.what, url, c.key, `unsupported manifest type ${m.mediaType || '(none)'} (schema 1 images are not supported)`);
    }
    const man = JSON.parse(m.bytes.toString('utf8')) as { config: LockBlob; layers: LockBlob[] };
    if (!man.config?.digest || !Array.isArray(man.layers)) throw new LockRefusal(c.what, url, c.key, 'the manifest has no config or layers');
    const cfgBytes = await this.blobBytes(ref, man.config, c);
    const cfg = JSON.parse(cfgBytes.toString('utf8')) as Partial<Platform>;
    if (!platformMatches({ os: cfg.os, architecture: cfg.architecture, variant: cfg.variant }, platform)) {
      throw new LockRefusal(
        c.what,
        url,
        c.key,
        `no variant for ${formatPlatform(platform)}: the image is ${[cfg.os, cfg.architecture, cfg.variant].filter(Boolean).join('/')} only`,
        `pick an image built for ${formatPlatform(platform)} (change ${c.key}), then run \`pi-image lock\``,
      );
    }
    keep?.(m.digest, m.bytes);
    keep?.(man.config.digest, cfgBytes);
    const blob = (b: LockBlob): LockBlob => ({ digest: b.digest, size: b.size, mediaType: b.mediaType });
    return {
      id,
      platform: formatPlatform(platform),
      ...(index ? { index } : {}),
      digest: m.digest,
      mediaType: m.mediaType,
      size: m.bytes.length,
      config: blob(man.config),
      layers: man.layers.map(blob),
    };
  }

  /** A small blob (a config) in memory, verified. */
  async blobBytes(ref: ImageRef, b: LockBlob, ctx: { what: string; key: string }): Promise<Buffer> {
    const url = `${registryBase(ref.registry)}/v2/${ref.name}/blobs/${b.digest}`;
    if (b.size > 4 << 20) throw new LockRefusal(ctx.what, url, ctx.key, `config blob of ${b.size} bytes is too large`);
    const res = await this.get(ref, `blobs/${b.digest}`, ctx);
    if (!res.ok) throw new LockRefusal(ctx.what, url, ctx.key, `HTTP ${res.status} ${res.statusText}`);
    const bytes = res.bytes;
    if (digestOf(bytes) !== b.digest) throw new LockRefusal(ctx.what, url, ctx.key, `blob hashes to ${digestOf(bytes)}, not ${b.digest}`);
    return bytes;
  }

  /** Stream a blob into `dest` (resumable, verified against its digest and size). */
  async blobToFile(ref: ImageRef, b: LockBlob, dest: string, ctx: { what: string; key: string }, signal?: AbortSignal): Promise<number> {
    const url = `${registryBase(ref.registry)}/v2/${ref.name}/blobs/${b.digest}`;
    try {
      const r = await fetchBlob({
        dest,
        digest: b.digest,
        size: b.size,
        what: `${ctx.what} blob ${b.digest}`,
        retries: this.opts.retries,
        backoffMs: this.opts.backoffMs,
        onProgress: this.opts.onProgress,
        signal,
        get: (range) => this.blobBody(ref, b.digest, ctx, range ? { Range: range } : {}),
      });
      return r.fetched;
    } catch (err) {
      if (err instanceof LockRefusal) throw err;
      throw new LockRefusal(ctx.what, url, ctx.key, (err as Error).message.replace(/^.*?: (?=sha256 mismatch)/, ''));
    }
  }
}
