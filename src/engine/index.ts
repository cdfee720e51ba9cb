/** Isolated container engines for build time: one Engine interface over a private dockerd or a private podman. */
export { startEngine } from './start.js';
export { engineBinaryVersion, EnginePullError, type Engine, type EngineImage, type EngineStartOptions, type ListedImage, type ContainerRun, type PullOptions, type PullRecords } from './engine.js';
export { dockerEngine, type DockerConnection } from './docker-engine.js';
export { podmanEngine, type PodmanConnection } from './podman-engine.js';
export { startDockerd, type DockerdOptions, type DockerStorageDriver, type EngineNetwork, type RunningDockerd } from './dockerd.js';
export { PODMAN_RUN_ARGS, startPodman, type PodmanExecOptions, type PodmanExecResult, type PodmanOptions, type PodmanStorageDriver, type RunningPodman } from './podman.js';
export { mountsUnder, unmountUnder } from './mounts.js';
export { checkPrivileges, resolveBinary, PRIVILEGES_HINT } from './prerequisites.js';
