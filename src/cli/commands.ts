import type { CommandModule } from 'yargs';
import { bakeCommand } from './bake.js';
import { fetchCommand } from './fetch.js';
import { lockCommand } from './lock.js';

/**
 * Every CLI command, one module each. Add a command by adding its module here.
 */
export const commands: CommandModule<object, any>[] = [lockCommand, fetchCommand, bakeCommand];
