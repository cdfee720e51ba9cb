/**
 * Helpers of the report tests: an ext4 filesystem on a loop device (the target filesystem the
 * unpacked-size model describes), du, GNU tar extraction, headless Chromium and a PNG decoder.
 */
import { execa } from 'execa';
import { access, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

export interface Ext4Mount {
  dir: string;
  close(): Promise<void>;
}

/** A fresh ext4 (4 KiB blocks, Debian 12 mke2fs defaults) mounted on a loop device. */
export async function mountExt4(sizeMiB = 256): Promise<Ext4Mount> {
  const root = await mkdtemp(join(tmpdir(), 'ctrbake-report-ext4-'));
  const img = join(root, 'fs.img');
  const dir = join(root, 'mnt');
  await mkdir(dir);
  let mounted = false;
  try {
    await execa('truncate', ['-s', `${sizeMiB}M`, img]);
    await execa('mkfs.ext4', ['-q', '-F', '-b', '4096', img]).catch((e: Error) => {
      throw new Error(`test prerequisite: mkfs.ext4 (Debian package e2fsprogs) failed: ${e.message}`);
    });
    await execa('mount', ['-o', 'loop', img, dir]).catch((e: Error) => {
      throw new Error(`test prerequisite: mounting an ext4 image on a loop device needs root and /dev/loop*: ${e.message}`);
    });
    mounted = true;
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    async close() {
      if (mounted) {
        // mount -o loop sets autoclear: the loop device goes with the unmount.
        await execa('umount', [dir]);
        mounted = false;
      }
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** `du --block-size=1 -s DIR` */
export async function duBytes(dir: string): Promise<number> {
  const r = await execa('du', ['--block-size=1', '-s', dir]);
  return Number(r.stdout.split(/\s+/)[0]);
}

/** Extracts a (possibly gzip'd) layer tar with GNU tar as root: owners, modes, xattrs, devices. */
export async function extractWithGnuTar(tarFile: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await execa('tar', ['--extract', '--file', tarFile, '--directory', dir, '--numeric-owner', '--same-permissions', '--xattrs', '--xattrs-include=*']);
}

export const CHROMIUM = '/usr/bin/chromium';

export interface ChromiumRun {
  stderr: string;
  dom: string;
  png: Buffer;
}

/** Opens a local HTML file in headless Chromium: DOM after scripts, a screenshot, the console log. */
export async function renderInChromium(htmlFile: string, width = 1100, height = 1300): Promise<ChromiumRun> {
  try {
    await access(CHROMIUM);
  } catch {
    throw new Error(`test prerequisite missing: ${CHROMIUM} (Debian package chromium); run scripts/install-deps.sh as root`);
  }
  const profile = await mkdtemp(join(tmpdir(), 'ctrbake-chromium-'));
  const shot = join(profile, 'shot.png');
  const common = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--hide-scrollbars',
    '--enable-logging=stderr',
    '--v=0',
    `--window-size=${width},${height}`,
  ];
  try {
    const url = `file://${htmlFile}`;
    const a = await execa(CHROMIUM, [...common, `--user-data-dir=${join(profile, 'a')}`, `--screenshot=${shot}`, url], { timeout: 120_000, reject: false });
    if (a.exitCode !== 0) throw new Error(`chromium --screenshot exited ${a.exitCode}: ${a.stderr.slice(-2000)}`);
    const b = await execa(CHROMIUM, [...common, `--user-data-dir=${join(profile, 'b')}`, '--dump-dom', url], { timeout: 120_000, reject: false });
    if (b.exitCode !== 0) throw new Error(`chromium --dump-dom exited ${b.exitCode}: ${b.stderr.slice(-2000)}`);
    return { stderr: `${a.stderr}\n${b.stderr}`, dom: b.stdout, png: await readFile(shot) };
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/**
 * Every console message and uncaught exception the page produced. Chromium 156 logs them all
 * as INFO:CONSOLE whatever their level, so any message counts: the report's page logs nothing.
 */
export function consoleErrors(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /:CONSOLE[:(]/.test(l));
}

export interface Image {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel. */
  pixel(x: number, y: number): [number, number, number, number];
}

/** Decodes an 8-bit RGB or RGBA PNG (what Chromium writes). */
export function decodePng(png: Buffer): Image {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || (data[9] !== 2 && data[9] !== 6) || data[12] !== 0) throw new Error(`unsupported PNG: bit depth ${data[8]}, color type ${data[9]}, interlace ${data[12]}`);
      colorType = data[9]!;
    } else if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const out = Buffer.alloc(width * height * 4);
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? line[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let v = line[i]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      line[i] = v & 0xff;
    }
    for (let x = 0; x < width; x++) {
      out[(y * width + x) * 4] = line[x * bpp]!;
      out[(y * width + x) * 4 + 1] = line[x * bpp + 1]!;
      out[(y * width + x) * 4 + 2] = line[x * bpp + 2]!;
      out[(y * width + x) * 4 + 3] = bpp === 4 ? line[x * bpp + 3]! : 255;
    }
    prev = line;
  }
  return {
    width,
    height,
    pixel: (x, y) => {
      const i = (y * width + x) * 4;
      return [out[i]!, out[i + 1]!, out[i + 2]!, out[i + 3]!];
    },
  };
}

/** Pixels of a color (within a small tolerance for anti-aliasing). */
export function countColor(img: Image, hex: string, tolerance = 6): number {
  const r = parseInt(hex.slice(1, 3), 16);
  const g = parseInt(hex.slice(3, 5), 16);
  const b = parseInt(hex.slice(5, 7), 16);
  let n = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const [pr, pg, pb] = img.pixel(x, y);
      if (Math.abs(pr - r) <= tolerance && Math.abs(pg - g) <= tolerance && Math.abs(pb - b) <= tolerance) n++;
    }
  }
  return n;
}
