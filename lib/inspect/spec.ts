// The IMAGE:PART:/path argument of `ls` and `cat`.
import { InputError } from '../errors.ts';
import { FileIO } from '../image/io.ts';
import { openPartition, type Volume } from './volume.ts';

export interface PartPathSpec {
  image: string;
  /** 1-based partition number. */
  part: number;
  path: string;
}

/** Parse `IMAGE:PART:/path` (or `IMAGE:PART`, meaning `/`). The image path may itself contain colons. */
export function parsePartPath(spec: string): PartPathSpec {
  const m = /^(.+):(\d+)(?::(\/.*)?)?$/.exec(spec);
  if (!m) {
    throw new InputError(`"${spec}" is not IMAGE:PART:/path`, 'Example: pi-image ls ubuntu.img:1:/overlays (partitions are numbered from 1).');
  }
  const part = Number(m[2]);
  if (part < 1) throw new InputError(`"${spec}": partition numbers start at 1`);
  return { image: m[1], part, path: m[3] ?? '/' };
}

/** Parse `IMAGE:PART:/path`, open that partition's filesystem, run `fn`, and close the image whatever happens. */
export async function withPartPath<T>(text: string, fn: (spec: PartPathSpec, v: Volume) => Promise<T> | T): Promise<T> {
  const spec = parsePartPath(text);
  const io = FileIO.open(spec.image);
  try {
    return await fn(spec, openPartition(io, spec.part));
  } finally {
    io.close();
  }
}
