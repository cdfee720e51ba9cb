/**
 * What bake needs from an engine, for docker and podman alike: load a docker-archive, inspect
 * an image, save it as a docker-archive, stop. Both run with no network (see src/engine/).
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { EngineError } from '../errors.js';
import type { EngineName } from '../formats/index.js';
import { startDockerd, type DockerStorageDriver } from '../engine/dockerd.js';
import { startPodman, type PodmanStorageDriver } from '../engine/podman.js';

export interface InspectedImage {
  /** "sha256:<hex>" */
  id: string;
  os: string;
  architecture: string;
  variant?: string;
}

export interface BakeEngine {
  name: EngineName;
  version: string;
  storageDriver: string;
  /** The engine's private dir (sockets, configs, logs), for diagnostics. */
  privateDir: string;
  load(archivePath: string): Promise<void>;
  /** Undefined when the engine does not have the image. */
  inspect(ref: string): Promise<InspectedImage | undefined>;
  save(ref: string, outPath: string): Promise<void>;
  stop(): Promise<void>;
}

export interface BakeEngineOptions {
  engine: EngineName;
  storageDriver: string;
  /** Where the engine keeps images (removed at stop unless keepDataRoot). */
  dataRoot: string;
  /** Keep dataRoot after stop (store mode captures it). */
  keepDataRoot?: boolean;
  binary?: string;
  tmpBase?: string;
  signal?: AbortSignal;
}

function withPrefix(id: string): string {
  return id.startsWith('sha256:') ? id : `sha256:${id}`;
}

export async function startBakeEngine(options: BakeEngineOptions): Promise<BakeEngine> {
  const common = {
    ...(options.binary ? { binary: options.binary } : {}),
    ...(options.tmpBase ? { tmpBase: options.tmpBase } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    network: 'none' as const,
  };
  if (options.engine === 'docker') {
    const d = await startDockerd({ ...common, storageDriver: options.storageDriver as DockerStorageDriver, dataRoot: options.dataRoot, keepDataRoot: options.keepDataRoot ?? false });
    return {
      name: 'docker',
      version: d.version,
      storageDriver: d.storageDriver,
      privateDir: d.privateDir,
      async load(archivePath) {
        const stream = await d.docker.loadImage(archivePath, { quiet: true });
        const events = await new Promise<Record<string, unknown>[]>((resolve, reject) => {
          d.docker.modem.followProgress(stream, (err: Error | null, res: Record<string, unknown>[]) => (err ? reject(err) : resolve(res)));
        }).catch((error: unknown) => {
          throw new EngineError('E_ENGINE_COMMAND', `docker load of ${archivePath} failed: ${(error as Error).message}`, { cause: error });
        });
        // followProgress does not reject on errors reported inside the stream: check each event.
        const failed = events.find((e) => e.error || e.errorDetail);
        if (failed) throw new EngineError('E_ENGINE_COMMAND', `docker load of ${archivePath} failed: ${String(failed.error ?? JSON.stringify(failed.errorDetail))}`);
      },
      async inspect(ref) {
        try {
          const info = (await d.docker.getImage(ref).inspect()) as { Id: string; Os: string; Architecture: string; Variant?: string };
          return { id: withPrefix(info.Id), os: info.Os, architecture: info.Architecture, ...(info.Variant ? { variant: info.Variant } : {}) };
        } catch (error) {
          if ((error as { statusCode?: number }).statusCode === 404) return undefined;
          throw new EngineError('E_ENGINE_COMMAND', `docker inspect ${ref} failed: ${(error as Error).message}`, { cause: error });
        }
      },
      async save(ref, outPath) {
        try {
          await pipeline(await d.docker.getImage(ref).get(), createWriteStream(outPath, { mode: 0o600 }));
        } catch (error) {
          throw new EngineError('E_ENGINE_COMMAND', `docker save ${ref} failed: ${(error as Error).message}`, { cause: error });
        }
      },
      stop: () => d.stop(),
    };
  }
  const p = await startPodman({ ...common, storageDriver: options.storageDriver as PodmanStorageDriver, root: options.dataRoot, keepRoot: options.keepDataRoot ?? false });
  return {
    name: 'podman',
    version: p.version,
    storageDriver: p.storageDriver,
    privateDir: p.privateDir,
    async load(archivePath) {
      // `pull docker-archive:` names the transport: `podman load` would probe formats by
      // extracting into /var/tmp first.
      await p.exec(['pull', '--quiet', `docker-archive:${archivePath}`]);
    },
    async inspect(ref) {
      const r = await p.exec(['image', 'inspect', '--format', 'json', ref], { reject: false });
      if (r.exitCode !== 0) {
        if (/image not known|no such image/i.test(r.stderr)) return undefined;
        throw new EngineError('E_ENGINE_COMMAND', `podman image inspect ${ref} failed: ${r.stderr.trim()}`);
      }
      const [info] = JSON.parse(r.stdout) as { Id: string; Os: string; Architecture: string; Variant?: string }[];
      if (!info) return undefined;
      return { id: withPrefix(info.Id), os: info.Os, architecture: info.Architecture, ...(info.Variant ? { variant: info.Variant } : {}) };
    },
    async save(ref, outPath) {
      await p.exec(['save', '--format', 'docker-archive', '-o', outPath, ref]);
    },
    stop: () => p.stop(),
  };
}
