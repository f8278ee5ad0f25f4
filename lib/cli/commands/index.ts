// The list of pi-image commands. Each module exports a yargs CommandModule named `command`.
import type { CommandModule } from 'yargs';
import { command as flash } from './flash.ts';
import { command as drives } from './drives.ts';

export const commands: CommandModule<any, any>[] = [flash, drives];
