/** Isolated container engines for build time: a private dockerd, a private podman. */
export { startDockerd, type DockerdOptions, type DockerStorageDriver, type EngineNetwork, type RunningDockerd } from './dockerd.js';
export { PODMAN_RUN_ARGS, startPodman, type PodmanExecOptions, type PodmanExecResult, type PodmanOptions, type PodmanStorageDriver, type RunningPodman } from './podman.js';
export { mountsUnder, unmountUnder } from './mounts.js';
export { checkPrivileges, resolveBinary, PRIVILEGES_HINT } from './prerequisites.js';
