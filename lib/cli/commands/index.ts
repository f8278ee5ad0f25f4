// The list of pi-image commands. Each module exports a yargs CommandModule named `command` and imports at its top
// only what its options need (types, errors, output): the code it runs is imported inside its handler, so --help
// and --version never load the pipelines, zod, yaml or the source layer.
import type { CommandModule } from 'yargs';
import { command as flash } from './flash.ts';
import { command as drives } from './drives.ts';
import { command as inspect } from './inspect.ts';
import { command as ls } from './ls.ts';
import { command as cat } from './cat.ts';
import { command as init } from './init.ts';
import { command as seed } from './seed.ts';
import { command as build } from './build.ts';
import { command as netboot } from './netboot.ts';
import { command as images } from './images.ts';
import { command as lock } from './lock.ts';

export const commands: CommandModule<any, any>[] = [images, lock, build, flash, drives, inspect, ls, cat, init, seed, netboot];
