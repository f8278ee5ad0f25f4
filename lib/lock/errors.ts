// The error `lock` and `build` raise for an artifact they refuse; defined with the others in lib/errors.ts.
export { LockRefusal } from '../errors.ts';
