// Container image references as manifests write them (`calico/node:v3.13.4`, `quay.io/x/y@sha256:…`), parsed and
// normalised the way Docker does: no registry host → docker.io, one-part names on docker.io → library/<name>,
// no tag → latest. Pure functions.
import { InputError } from '../errors.ts';

export interface ImageRef {
  /** Registry host[:port] as written (docker.io for Docker Hub). */
  registry: string;
  /** Repository path (library/nginx). */
  name: string;
  tag?: string;
  digest?: string;
}

const NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function parseImageRef(text: string): ImageRef {
  const fail = (why: string): never => {
    throw new InputError(`"${text}" is not an image reference: ${why}`);
  };
  let rest = text.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail('bad digest');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail('bad tag');
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  let registry = 'docker.io';
  let name = rest;
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    name = rest.slice(slash + 1);
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && !name.includes('/')) name = `library/${name}`;
  if (!NAME.test(name)) fail('bad repository name');
  if (!tag && !digest) tag = 'latest';
  return { registry, name, tag, digest };
}

/** The canonical text: docker.io/library/nginx:1.17 (tag and digest both kept when both were given). */
export function formatImageRef(r: ImageRef): string {
  return `${r.registry}/${r.name}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** Base URL of a registry's v2 API: Docker Hub's API host; plain http only for the loopback (as Docker does). */
export function registryBase(registry: string): string {
  if (registry === 'docker.io') return 'https://registry-1.docker.io';
  const host = registry.replace(/:\d+$/, '');
  const loopback = host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
  return `${loopback ? 'http' : 'https'}://${registry}`;
}
