// Can anyone log in to the nodes a profile makes? A node with no SSH key and no password login is a node nobody
// can reach when first boot goes wrong. Returns the one-line warning naming the profile key, or undefined.
import type { Profile } from './profile.ts';

export function loginWarning(p: Profile): string | undefined {
  const canLogIn = p.users.some((u) => u.sshKeys.length > 0 || (u.passwordLogin && u.passwordHash));
  if (canLogIn) return undefined;
  if (p.users.length === 0) {
    return 'no user can log in to the nodes: the profile has no `users` (add one with `sshKeys`, e.g. users[0].sshKeys: ["ssh-ed25519 AAAA… you@host"])';
  }
  const where = p.users.length === 1 ? 'users[0].sshKeys' : `users[0..${p.users.length - 1}].sshKeys`;
  return `no user can log in to the nodes: ${where} is empty and password login is off (add your public key to users[0].sshKeys)`;
}
