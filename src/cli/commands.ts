import type { CommandModule } from 'yargs';
import { bakeCommand } from './bake.js';
import { buildCommand } from './build.js';
import { diffCommand } from './diff.js';
import { fetchCommand } from './fetch.js';
import { imageArchiveCommand } from './image-archive.js';
import { loaderCommand } from './loader.js';
import { lockCommand } from './lock.js';
import { reportCommand } from './report.js';
import { squashfsCommand } from './squashfs.js';
import { verifyStoreCommand } from './verify-store.js';

/**
 * Every CLI command, one module each. Add a command by adding its module here.
 */
export const commands: CommandModule<object, any>[] = [lockCommand, fetchCommand, bakeCommand, reportCommand, squashfsCommand, diffCommand, loaderCommand, verifyStoreCommand, buildCommand, imageArchiveCommand];
