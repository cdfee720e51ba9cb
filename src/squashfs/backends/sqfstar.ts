/**
 * Backend: squashfs-tools' sqfstar (>= 4.5), what Yocto and Buildroot ship. Its traps
 * (checked against 4.5.1) and what this backend does about each:
 * - owner names are looked up in the host's passwd/group and win over the numeric ids:
 *   the canonical stream carries no uname/gname, so the numeric ids stay;
 * - `./`-prefixed hard-link targets do not resolve: every name is normalised;
 * - LIBARCHIVE.xattr values whose base64 ends in "=" are dropped: xattrs travel as
 *   SCHILY.xattr records with raw values; xattr names containing "=" are refused;
 * - directories the tar does not declare get 0755, the caller's uid and the current time,
 *   and the root 0777 and the current time: every parent is declared in the stream
 *   (0755 root:root, SOURCE_DATE_EPOCH) and the root attributes are passed as options;
 *   a directory declared after its content, or root xattrs, are refused;
 * - a PAX mtime without a fraction is rejected: mtimes go in the ustar header;
 * - a PAX linkpath loses leading "/", "./" and "../": long link targets go as GNU long links;
 * - 4.5.x ignores -root-uid, -root-gid and -root-time when reading a tar (fixed in 4.6):
 *   the image root gets the caller's uid/gid and the current time. A root owned by anyone
 *   else is refused; the root mtime cannot be set, so the image is not byte-reproducible
 *   (a warning says so).
 */
import { CommandError, ConfigError, InputError } from '../../errors.js';
import type { ResolvedSquashfsOptions, SquashfsBackendImpl, SquashfsBackendRun } from './backend.js';
import { captureOutput, E_SQUASHFS_TOOL_VERSION, findHostTool, runHostTool } from './host-tool.js';
import { TarNormalizer } from './tar-normalize.js';
import { displayName, E_TAR_UNSUPPORTED } from '../../formats/tar/index.js';

export const E_SQFSTAR_ROOT_OWNER = 'E_SQFSTAR_ROOT_OWNER';

export const SQFSTAR_MIN_VERSION = [4, 5] as const;

/** "sqfstar version 4.5.1 (2022/03/17)" -> [4, 5, 1]. */
export function parseSqfstarVersion(output: string): number[] | null {
  const match = /sqfstar version (\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  if (!match) return null;
  return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

/** sqfstar before 4.6 ignores -root-uid/-root-gid/-root-time in tar mode. */
export function sqfstarIgnoresRootOptions(version: number[]): boolean {
  const [major, minor] = version;
  return major === 4 && minor < 6;
}

export function sqfstarVersionSupported(version: number[]): boolean {
  const [major, minor] = version;
  return major > SQFSTAR_MIN_VERSION[0] || (major === SQFSTAR_MIN_VERSION[0] && minor >= SQFSTAR_MIN_VERSION[1]);
}

function levelArgs(compression: string, level: number | undefined): string[] {
  if (level === undefined) return [];
  switch (compression) {
    case 'gzip':
    case 'zstd':
      return ['-Xcompression-level', String(level)];
    case 'lz4':
      return level > 0 ? ['-Xhc'] : [];
    default:
      // resolveSquashfsOptions refuses this combination before any work.
      throw new ConfigError('E_SQUASHFS_OPTIONS', `sqfstar has no compression level for ${compression}`);
  }
}

export const sqfstarBackend: SquashfsBackendImpl = {
  name: 'sqfstar',
  async prepare(config: ResolvedSquashfsOptions) {
    const tool = await findHostTool('sqfstar', 'squashfs-tools', config.flags.backend);
    const { output } = await captureOutput(tool, ['-version']);
    const version = parseSqfstarVersion(output);
    if (!version || !sqfstarVersionSupported(version)) {
      throw new CommandError(
        E_SQUASHFS_TOOL_VERSION,
        `sqfstar ${version ? version.join('.') : '(unknown version)'} at ${tool.path} is too old: ctrbake needs squashfs-tools >= ${SQFSTAR_MIN_VERSION.join('.')}; upgrade it or use ${config.flags.backend} builtin`,
        { details: { tool: tool.path, output: output.slice(0, 200) } },
      );
    }
    const compressionArgs = levelArgs(config.compression, config.level);
    return {
      tool: { name: 'sqfstar', version: version.join('.') },
      async write(input: AsyncIterable<Uint8Array>, tmpPath: string, cfg: ResolvedSquashfsOptions): Promise<SquashfsBackendRun> {
        const normalizer = new TarNormalizer(input, {
          backend: 'sqfstar',
          explicitParents: true,
          omitRoot: true,
          refuseSparse: true,
          defaultMtime: cfg.sourceDateEpoch,
          onBytes: cfg.onInputBytes,
          gnuLongLinks: true,
          checkEntry(entry, path) {
            for (const key of entry.xattrs.keys()) {
              if (key.includes('=')) {
                throw new InputError(
                  E_TAR_UNSUPPORTED,
                  `tar entry ${JSON.stringify(displayName(entry.name))} has xattr ${JSON.stringify(displayName(key))} whose name contains "=", which sqfstar cannot read; use another backend`,
                );
              }
            }
            if (path === '' && entry.xattrs.size > 0) {
              throw new InputError(
                E_TAR_UNSUPPORTED,
                'the root directory of the tar has xattrs, which sqfstar cannot set on the image root; use the builtin or tar2sqfs backend',
              );
            }
          },
        });
        await normalizer.start();
        const root = normalizer.root ?? { mode: 0o755, uid: 0, gid: 0, mtime: cfg.sourceDateEpoch };
        if (sqfstarIgnoresRootOptions(version)) {
          const uid = process.getuid?.() ?? 0;
          const gid = process.getgid?.() ?? 0;
          if (root.uid !== uid || root.gid !== gid) {
            throw new CommandError(
              E_SQFSTAR_ROOT_OWNER,
              `sqfstar ${version.join('.')} gives the image root the caller's owner (${uid}:${gid}), but the tar wants ${root.uid}:${root.gid}; use squashfs-tools >= 4.6, run as that user, or use the builtin or tar2sqfs backend`,
              { details: { version: version.join('.'), wanted: [root.uid, root.gid], caller: [uid, gid] } },
            );
          }
          cfg.onWarning?.(
            `sqfstar ${version.join('.')} sets the image root's mtime to the current time (it ignores -root-time when reading a tar; fixed in squashfs-tools 4.6): this image is not byte-reproducible; use the builtin or tar2sqfs backend for reproducible images`,
          );
        }
        const args = [
          '-quiet',
          '-no-progress',
          '-exit-on-error',
          '-comp',
          cfg.compression,
          ...compressionArgs,
          '-b',
          String(cfg.blockSize),
          '-processors',
          String(cfg.workers),
          '-mkfs-time',
          String(cfg.sourceDateEpoch),
          '-root-time',
          String(root.mtime),
          '-root-mode',
          root.mode.toString(8).padStart(4, '0'),
          '-root-uid',
          String(root.uid),
          '-root-gid',
          String(root.gid),
          tmpPath,
        ];
        await runHostTool(tool, args, normalizer.output(), cfg.signal);
        return { entries: normalizer.summary().entries, inputBytes: normalizer.summary().inputBytes };
      },
    };
  },
};
