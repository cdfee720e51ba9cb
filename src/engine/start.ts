/**
 * The one entry to a private engine: picks the implementation of the Engine interface
 * (engine.ts) for the engine's name. Apart from engine.ts so that the implementations,
 * which import engine.ts, are not imported back by it.
 */
import type { Engine, EngineStartOptions } from './engine.js';

/** Starts a private engine of the given kind (private dirs, no TCP, teardown always: see dockerd.ts, podman.ts). */
export async function startEngine(options: EngineStartOptions): Promise<Engine> {
  // Imported here: dockerode costs start-up time a CLI call that starts no engine should not pay.
  if (options.engine === 'docker') return (await import('./docker-engine.js')).startDockerEngine(options);
  return (await import('./podman-engine.js')).startPodmanEngine(options);
}
