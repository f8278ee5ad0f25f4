// Mirror override (`--mirror URL`, `PI_IMAGE_MIRROR`) for CI and air-gapped users: the origin of each catalog URL
// (scheme, host, port) is replaced by the mirror URL, and the original path is kept under the mirror's path. So
// `http://cdimage.ubuntu.com/releases/24.04/release/x.img.xz` with mirror `http://10.0.0.5:8080/ubuntu` becomes
// `http://10.0.0.5:8080/ubuntu/releases/24.04/release/x.img.xz`, and with `file:///srv/mirror` becomes
// `file:///srv/mirror/releases/24.04/release/x.img.xz`: copy the release directories (with their SHA256SUMS) into
// the mirror under their original paths.
import { InputError } from '../errors.ts';

/** The mirror in effect: the explicit option, else `PI_IMAGE_MIRROR`, else none. */
export function mirrorFromEnv(explicit?: string): string | undefined {
  const m = explicit ?? process.env.PI_IMAGE_MIRROR;
  if (!m) return undefined;
  if (!/^(https?|file):\/\//.test(m)) throw new InputError(`mirror "${m}": must be an http://, https:// or file:// URL`);
  return m;
}

/** Rewrite one URL onto the mirror (see the file header). */
export function applyMirror(url: string, mirror: string | undefined): string {
  if (!mirror) return url;
  const u = new URL(url);
  return mirror.replace(/\/+$/, '') + u.pathname + u.search;
}

/** Rewrite a list of URLs onto the mirror, dropping duplicates, order kept. */
export function mirrorUrls(urls: readonly string[], mirror: string | undefined): string[] {
  return [...new Set(urls.map((u) => applyMirror(u, mirror)))];
}
