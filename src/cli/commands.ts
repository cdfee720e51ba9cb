import type { CommandModule } from 'yargs';

/**
 * Every CLI command, one module each. Add a command by adding its module here.
 */
export const commands: CommandModule<object, any>[] = [];
