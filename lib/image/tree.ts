// Depth-first walk of a directory tree, shared by the FAT and ext4 readers: one stack, absolute paths, and the loop
// check. A directory is known by a key (its first cluster, its inode); a key met a second time is a loop, reported
// by the reader's own error naming the path, so no walk goes round for ever or silently skips a subtree.

export interface WalkRoot<E> {
  path: string;
  key: number;
  children: E[];
}

/** What a reader says of one entry: the value to yield, and for a directory its key and children. */
export interface WalkStep<V, E> {
  value: V;
  dir?: { key: number; children: () => E[] };
}

/** Every entry below `root`, depth first, children in the order given; `loop` builds the error for a key met twice. */
export function* walkTree<E, V>(
  root: WalkRoot<E>,
  name: (entry: E) => string,
  step: (entry: E, path: string) => WalkStep<V, E>,
  loop: (path: string, key: number, firstPath: string, entry: E) => Error,
): Generator<{ path: string; value: V }> {
  const seen = new Map<number, string>([[root.key, root.path]]);
  const stack: Array<{ path: string; entries: E[]; i: number }> = [{ path: root.path, entries: root.children, i: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.i >= top.entries.length) {
      stack.pop();
      continue;
    }
    const e = top.entries[top.i++];
    const path = top.path === '/' ? `/${name(e)}` : `${top.path}/${name(e)}`;
    const s = step(e, path);
    yield { path, value: s.value };
    if (!s.dir) continue;
    const first = seen.get(s.dir.key);
    if (first !== undefined) throw loop(path, s.dir.key, first, e);
    seen.set(s.dir.key, path);
    stack.push({ path, entries: s.dir.children(), i: 0 });
  }
}
