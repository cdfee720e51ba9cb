/** The podman Engine: podman commands against one private storage (or any podman a test brings). */
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../errors.js';
import { EnginePullError, sharedStartOptions, withSha256Prefix, type ContainerRun, type Engine, type EngineImage, type EngineStartOptions, type PullRecords } from './engine.js';
import { PODMAN_RUN_ARGS, startPodman, type PodmanExecOptions, type PodmanExecResult, type PodmanStorageDriver } from './podman.js';

/** A podman ready to run commands: `exec` runs `podman ARGS` against its storage. RunningPodman is one. */
export interface PodmanConnection {
  version: string;
  storageDriver: string;
  /** The graphroot. */
  root: string;
  privateDir?: string;
  exec(args: readonly string[], options?: PodmanExecOptions): Promise<PodmanExecResult>;
  stop(): Promise<void>;
}

export function podmanEngine(p: PodmanConnection): Engine {
  let emptyAuthfile: Promise<string> | undefined;
  // No --authfile means the host user's credentials: an empty file instead, so none are picked up.
  const noCredentials = () =>
    (emptyAuthfile ??= (async () => {
      if (!p.privateDir) throw new EngineError('E_ENGINE_COMMAND', 'podman pull without an authfile needs the engine\'s private dir for an empty one');
      const file = join(p.privateDir, 'no-auth.json');
      await writeFile(file, '{"auths":{}}\n', { mode: 0o600 });
      return file;
    })());
  return {
    name: 'podman',
    program: 'podman',
    version: p.version,
    storageDriver: p.storageDriver,
    privateDir: p.privateDir ?? '',
    root: p.root,
    async load(archivePath) {
      // `pull docker-archive:` names the transport: `podman load` would probe formats by
      // extracting into /var/tmp first.
      await p.exec(['pull', '--quiet', `docker-archive:${archivePath}`]);
    },
    async inspect(ref): Promise<EngineImage | undefined> {
      const r = await p.exec(['image', 'inspect', '--format', 'json', ref], { reject: false });
      if (r.exitCode !== 0) {
        if (/image not known|no such image/i.test(r.stderr)) return undefined;
        throw new EngineError('E_ENGINE_COMMAND', `podman image inspect ${ref} failed: ${r.stderr.trim()}`);
      }
      const [info] = JSON.parse(r.stdout) as { Id: string; Os: string; Architecture: string; Variant?: string; RootFS?: { Layers?: string[] } }[];
      if (!info) return undefined;
      return { id: withSha256Prefix(info.Id), os: info.Os, architecture: info.Architecture, ...(info.Variant ? { variant: info.Variant } : {}), diffIds: info.RootFS?.Layers ?? [] };
    },
    async listImages() {
      const list = JSON.parse((await p.exec(['images', '--format', 'json'])).stdout || '[]') as Array<{ Id: string; Names?: string[] | null }>;
      return list.map((i) => ({ id: withSha256Prefix(i.Id), names: i.Names ?? [] }));
    },
    async save(ref, outPath) {
      await p.exec(['save', '--format', 'docker-archive', '--output', outPath, ref]);
    },
    async run(ref): Promise<ContainerRun> {
      const r = await p.exec(['run', '--rm', ...PODMAN_RUN_ARGS, ref], { reject: false });
      // The runner strips the final newline the container printed.
      return { exitCode: r.exitCode, stdout: r.exitCode === 0 ? `${r.stdout}\n` : r.stdout, stderr: r.stderr };
    },
    async pull(ref, options = {}) {
      const authfile = options.authfile ?? (await noCredentials());
      const tls = options.insecure ? ['--tls-verify=false'] : [];
      const r = await p.exec(['pull', '--quiet', '--authfile', authfile, ...tls, ref], { reject: false, ...(options.signal ? { signal: options.signal } : {}) });
      if (r.exitCode !== 0) throw new EnginePullError(ref, r.stderr);
    },
    /**
     * podman keeps the manifest it pulled byte for byte in its image store: any file of the
     * image's dir may be it (the caller checks the digest, so the layout does not matter).
     */
    async pullRecords(imageId): Promise<PullRecords> {
      const imageDir = join(p.root, `${p.storageDriver}-images`, imageId.replace(/^sha256:/, ''));
      const names = await readdir(imageDir).catch(() => [] as string[]);
      const files: string[] = [];
      for (const name of names) if ((await stat(join(imageDir, name))).isFile()) files.push(join(imageDir, name));
      return { manifestCandidates: files };
    },
    stop: () => p.stop(),
  };
}

export async function startPodmanEngine(options: EngineStartOptions): Promise<Engine> {
  const p = await startPodman({
    storageDriver: options.storageDriver as PodmanStorageDriver,
    ...(options.dataRoot ? { root: options.dataRoot, keepRoot: options.keepDataRoot ?? false } : {}),
    ...sharedStartOptions(options),
    ...(options.additionalImageStore ? { additionalImageStore: options.additionalImageStore } : {}),
  });
  return podmanEngine(p);
}
