// The list of pi-image commands. Each module exports a yargs CommandModule named `command`.
import type { CommandModule } from 'yargs';

export const commands: CommandModule<any, any>[] = [];
