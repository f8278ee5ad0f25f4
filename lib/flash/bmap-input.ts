// The block map a flash or verify uses: one given parsed, a path, `<image>.bmap` when it is there, or none
// (false: ignore any; the map is then made on the fly from the image's data extents).
import { existsSync, readFileSync } from 'node:fs';
import { parseBmap, type Bmap } from '../image/bmap.ts';
import { InputError } from '../errors.ts';

/** The bmap for `image`, and the path it was read from. */
export function loadBmap(opts: { image: string; bmap?: string | Bmap | false }): { bmap?: Bmap; path?: string } {
  if (opts.bmap === false) return {};
  if (typeof opts.bmap === 'object') return { bmap: opts.bmap };
  const path = opts.bmap ?? (existsSync(`${opts.image}.bmap`) ? `${opts.image}.bmap` : undefined);
  if (!path) return {};
  if (!existsSync(path)) throw new InputError(`${path}: bmap file not found`);
  return { bmap: parseBmap(readFileSync(path, 'utf8'), path), path };
}
