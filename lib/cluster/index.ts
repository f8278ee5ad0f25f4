// The cluster layer's public surface: profiles, secrets, disk identity, per-node plans and seeds.
export { loadProfile, parseProfile, findNode, selectNodes, resolveProfilePath, profileDigest, parseSize, BUILTIN_PROFILE, type Profile, type LoadedProfile, type ResolvedNode } from './profile.ts';
export { loadOrCreateSecrets, secretsDir, discoveryHashOf, type Secrets, type SecretsOptions } from './secrets.ts';
export { diskSignature, sdDiskSignature } from './disk.ts';
export { nodePlan, type NodePlan } from './plan.ts';
export { renderSeed, type Seed } from './seed.ts';
