/**
 * The loader tests' common frame: the fixture (devkit/device-setup.ts) set up once per file,
 * then the file's own bakes and loader outputs; every device disposed after each test, the
 * fixture after the file.
 */
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { Boot, InitStyle, SimDevice } from '../../devkit/device.js';
import { Devices, setupLoaderFixture, type LoaderFixture } from '../../devkit/device-setup.js';

/** Registers the hooks; `build` gets the fixture (bake, loader...); returns the device factory. */
export function useLoaderFixture(build: (f: LoaderFixture) => Promise<void>, timeoutMs: number): (overlay: string, dataSizeMiB?: number) => Promise<SimDevice> {
  let f: LoaderFixture | undefined;
  const devices = new Devices();
  beforeAll(async () => {
    f = await setupLoaderFixture();
    await build(f);
  }, timeoutMs);
  afterEach(() => devices.disposeAll());
  afterAll(async () => {
    await f?.dispose();
  });
  return (overlay, dataSizeMiB) => devices.create(overlay, dataSizeMiB);
}

export function expectBooted(boot: Boot): void {
  expect(boot.failure, `boot failed at ${boot.failure?.name}: ${boot.failure?.stderr}`).toBeUndefined();
}

/** `ctrbake-device COMMAND` on the device. */
export async function deviceSh(d: SimDevice, command: string): Promise<{ exitCode: number; all: string; stderr: string }> {
  const r = await d.ctrbakeDevice([command]);
  return { exitCode: r.exitCode ?? -1, all: String(r.all), stderr: String(r.stderr) };
}

/** Factory reset as a user does it: `ctrbake-device reset` with the engine stopped, then a full boot (returned). */
export async function factoryReset(d: SimDevice, init: InitStyle): Promise<Boot> {
  await d.boot({ init, stopBefore: 'engine' });
  const reset = await deviceSh(d, 'reset');
  expect(reset.exitCode, reset.all).toBe(0);
  await d.shutdown();
  const after = await d.boot({ init });
  expectBooted(after);
  return after;
}
