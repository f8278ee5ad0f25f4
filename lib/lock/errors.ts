// The one error `lock` and `build` raise for an artifact they refuse: one line naming the artifact, its URL, why,
// and the profile key to change.
import { PiImageError } from '../errors.ts';

export class LockRefusal extends PiImageError {
  readonly artifact: string;
  readonly url: string;
  readonly key: string;
  constructor(artifact: string, url: string, key: string, why: string, hint?: string) {
    super('LOCK_REFUSED', `${artifact}: ${url}: ${why} (profile key ${key})`, hint ?? `change ${key} in the profile, then run \`pi-image lock\` again`);
    this.artifact = artifact;
    this.url = url;
    this.key = key;
  }
}
