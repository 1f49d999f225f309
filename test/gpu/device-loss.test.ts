// A lost device is reported as one (DeviceLostError), which the studio and the CLI recover from, even
// when pending work fails first with the transport's own words, as it does when a browser's GPU
// process crashes; a failure on a live device keeps its own error.

import { describe, expect, it } from 'vitest';
import { DeviceLostError, GpuContext } from '../../src/gpu/context';
import { createNodeGpuContext } from '../../src/node/gpu';

const TRANSPORT_FAILURE = 'A valid external Instance reference no longer exists.';

/** The device with queue.onSubmittedWorkDone() failing as a crashed GPU process makes it fail. */
function withFailingQueue(device: GPUDevice, afterFailing: () => void): GPUDevice {
  const queue = new Proxy(device.queue, {
    get(target, key) {
      if (key !== 'onSubmittedWorkDone') {
        const value = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return () => {
        setTimeout(afterFailing, 50);
        return Promise.reject(new Error(TRANSPORT_FAILURE));
      };
    },
  });
  return new Proxy(device, {
    get(target, key) {
      if (key === 'queue') return queue;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('device loss', () => {
  it('a read in flight when the device is destroyed fails with DeviceLostError', async () => {
    const ctx = await createNodeGpuContext();
    const tensor = ctx.tensor([4], 'values', Float32Array.from([1, 2, 3, 4]));
    const reading = ctx.read(tensor);
    ctx.device.destroy();
    await expect(reading).rejects.toBeInstanceOf(DeviceLostError);
    expect(ctx.isLost).toBe(true);
  });

  it('work that fails before device.lost resolves is reported as the device loss', async () => {
    const real = await createNodeGpuContext();
    const ctx = new GpuContext(
      withFailingQueue(real.device, () => real.device.destroy()),
      { adapterName: 'proxied' },
    );
    const error = await ctx.sync().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceLostError);
    expect((error as Error).message).toMatch(/^GPU device lost: /);
  });

  it('a failure on a device that stays alive keeps its own error', async () => {
    const real = await createNodeGpuContext();
    const ctx = new GpuContext(
      withFailingQueue(real.device, () => {}),
      { adapterName: 'proxied' },
    );
    await expect(ctx.sync()).rejects.toThrow(TRANSPORT_FAILURE);
    expect(ctx.isLost).toBe(false);
    real.destroy();
  });
});
