/** The docker Engine: dockerode over a private dockerd's unix socket (or any daemon a test brings). */
import { createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type Dockerode from 'dockerode';
import { EngineError } from '../errors.js';
import { startDockerd, type DockerStorageDriver } from './dockerd.js';
import { EnginePullError, sharedStartOptions, withSha256Prefix, type ContainerRun, type Engine, type EngineImage, type EngineStartOptions, type PullOptions, type PullRecords } from './engine.js';

/** A running dockerd: its API client and what it was started with. RunningDockerd is one. */
export interface DockerConnection {
  docker: Dockerode;
  version: string;
  storageDriver: string;
  dataRoot: string;
  privateDir?: string;
  stop(): Promise<void>;
}

interface StreamEvent {
  status?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  progressDetail?: { current?: number; total?: number };
}

/** Waits for a dockerode progress stream; followProgress does not reject on errors inside the stream, so each event is checked. */
async function followStream(docker: Dockerode, stream: NodeJS.ReadableStream, onEvent?: (e: StreamEvent) => void): Promise<string | undefined> {
  const events = await new Promise<StreamEvent[]>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, out: StreamEvent[]) => (err ? reject(err) : resolve(out)), onEvent);
  });
  const failed = events.find((e) => e.error || e.errorDetail);
  return failed ? (failed.errorDetail?.message ?? failed.error ?? JSON.stringify(failed.errorDetail)) : undefined;
}

/** Splits docker's multiplexed log stream (non-TTY containers) into stdout and stderr. */
export function demuxDockerLogs(buffer: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const type = buffer[offset];
    const size = buffer.readUInt32BE(offset + 4);
    const payload = buffer.subarray(offset + 8, offset + 8 + size);
    (type === 2 ? err : out).push(payload);
    offset += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

export function dockerEngine(d: DockerConnection): Engine {
  const { docker } = d;
  const failed = (what: string, error: unknown) => new EngineError('E_ENGINE_COMMAND', `${what} failed: ${(error as Error).message}`, { cause: error });
  return {
    name: 'docker',
    program: 'dockerd',
    version: d.version,
    storageDriver: d.storageDriver,
    privateDir: d.privateDir ?? '',
    root: d.dataRoot,
    async load(archivePath) {
      let streamError: string | undefined;
      try {
        streamError = await followStream(docker, await docker.loadImage(archivePath, { quiet: true }));
      } catch (error) {
        throw failed(`docker load of ${archivePath}`, error);
      }
      if (streamError !== undefined) throw new EngineError('E_ENGINE_COMMAND', `docker load of ${archivePath} failed: ${streamError}`);
    },
    async inspect(ref): Promise<EngineImage | undefined> {
      try {
        const info = (await docker.getImage(ref).inspect()) as { Id: string; Os: string; Architecture: string; Variant?: string; RootFS?: { Layers?: string[] } };
        return { id: withSha256Prefix(info.Id), os: info.Os, architecture: info.Architecture, ...(info.Variant ? { variant: info.Variant } : {}), diffIds: info.RootFS?.Layers ?? [] };
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) return undefined;
        throw failed(`docker inspect ${ref}`, error);
      }
    },
    async listImages() {
      const list = (await docker.listImages()) as Array<{ Id: string; RepoTags?: string[] | null }>;
      return list.map((i) => ({ id: withSha256Prefix(i.Id), names: i.RepoTags ?? [] }));
    },
    async save(ref, outPath) {
      try {
        await pipeline(await docker.getImage(ref).get(), createWriteStream(outPath, { mode: 0o600 }));
      } catch (error) {
        throw failed(`docker save ${ref}`, error);
      }
    },
    async run(ref): Promise<ContainerRun> {
      const container = await docker.createContainer({ Image: ref, HostConfig: { NetworkMode: 'none' }, NetworkDisabled: true });
      try {
        await container.start();
        const exit = (await container.wait()) as { StatusCode: number };
        const logs = demuxDockerLogs((await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer);
        return { exitCode: exit.StatusCode, ...logs };
      } finally {
        await container.remove({ force: true });
      }
    },
    async pull(ref, options: PullOptions = {}) {
      options.signal?.throwIfAborted();
      const registry = ref.split('/')[0]!;
      const authconfig = options.credentials
        ? { ...options.credentials, serveraddress: registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry }
        : undefined;
      let streamError: string | undefined;
      try {
        const stream = await docker.pull(ref, authconfig ? { authconfig } : {});
        streamError = await followStream(docker, stream, (e) => {
          if (e.progressDetail?.total) options.onProgress?.({ status: `${e.status ?? ''} ${e.id ?? ''}`, current: e.progressDetail.current ?? 0, total: e.progressDetail.total });
        });
      } catch (error) {
        // dockerode prefixes the daemon's message with its own HTTP status (500 for most pull errors).
        throw new EnginePullError(ref, String((error as Error).message ?? error).replace(/^\(HTTP code \d+\)[^-]*- /, ''), { cause: error });
      }
      // dockerd reports pull failures inside the stream, not as an HTTP error.
      if (streamError !== undefined) throw new EnginePullError(ref, streamError);
    },
    /** dockerd keeps no manifest, but records the compressed digest it pulled for each layer (image/<driver>/distribution/diffid-by-digest/). */
    async pullRecords(_imageId, layerDigests): Promise<PullRecords> {
      const dir = join(d.dataRoot, 'image', d.storageDriver, 'distribution', 'diffid-by-digest', 'sha256');
      if (!(await stat(dir).then((st) => st.isDirectory(), () => false))) return { layerDiffIds: 'unrecorded', manifestCandidates: [] };
      const layerDiffIds = new Map<string, string | undefined>();
      for (const digest of layerDigests) {
        const recorded = await readFile(join(dir, digest.replace(/^sha256:/, '')), 'utf8').then((t) => t.trim(), () => undefined);
        layerDiffIds.set(digest, recorded);
      }
      return { layerDiffIds, manifestCandidates: [] };
    },
    stop: () => d.stop(),
  };
}

export async function startDockerEngine(options: EngineStartOptions): Promise<Engine> {
  if (options.additionalImageStore !== undefined) throw new EngineError('E_ENGINE_COMMAND', 'docker has no additional image stores: that is a podman option');
  const d = await startDockerd({
    storageDriver: options.storageDriver as DockerStorageDriver,
    ...(options.dataRoot ? { dataRoot: options.dataRoot, keepDataRoot: options.keepDataRoot ?? false } : {}),
    ...sharedStartOptions(options),
  });
  return dockerEngine(d);
}
