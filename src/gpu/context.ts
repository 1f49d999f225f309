// The engine's handle on a GPUDevice: tensors with byte accounting, a pipeline cache, many dispatches
// per command submission, readback, optional GPU timing, and device-loss events. It takes a
// GPUDevice and never asks where it came from, so it runs the same in a page, a worker and Node.

import { MemoryTracker } from './memory';
import type { ParamValues } from './params';
import { type Arithmetic, shaderInterface, shaderVariantSource, type ShaderName } from './shaders';
import { HALF_MAX, HalfRangeError, packHalves, unpackHalves } from './half';
import { BYTES_PER_ELEMENT, type ElementType, Tensor, shapeString, tensorByteLength } from './tensor';

export type Binding = Tensor | GPUBuffer;

export interface Dispatch {
  shader: ShaderName;
  entry: string;
  /** WGSL `override` constants, for example tile sizes. */
  constants?: Record<string, number>;
  /** The shader's variant: 'f16' multiplies in half precision (needs shader-f16; see shaders.ts). Default 'f32'. */
  arithmetic?: Arithmetic;
  /** The shader's `struct Params` (bound at @binding(0)), every field by the camelCase of its WGSL name. */
  params?: ParamValues;
  /** Storage buffers by the camelCase of their WGSL variable names. */
  bindings: Record<string, Binding>;
  workgroups: readonly [number, number?, number?];
}

export class GpuError extends Error {
  override name = 'GpuError';
}

export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}

/** The error every use of a lost device meets, in the words of its loss. */
export function deviceLostError(info: GPUDeviceLostInfo): DeviceLostError {
  return new DeviceLostError(`GPU device lost: ${info.message || 'no detail given'}`);
}

/** A shader entry point's share of a profiled run (GpuContext.time with perKernel). */
export interface KernelTime {
  ms: number;
  dispatches: number;
}

const UNIFORM_ALIGNMENT = 256;
const UNIFORM_ARENA_BYTES = 1 << 20;
const MAX_TIMED_PASSES = 2048; // a query set holds at most 4096 timestamps
const CACHED_BIND_GROUPS = 4096; // a ViT-B/32 training step makes about 800 dispatches
const MAX_IDLE_READBACKS = 16;
const LOSS_GRACE_MS = 2000; // how long a failed GPU wait waits for device.lost to explain it

export class GpuContext {
  readonly memory = new MemoryTracker();
  readonly adapterName: string;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  /**
   * Bind groups by pipeline and resources, least recently used first. A training step binds the same
   * buffers (its activations come back from `reusable`, each to the label it last held), and its
   * uniforms at the same arena offsets, every step: most groups are made once.
   */
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  /** Tensor buffers released since the last submission: cleared at its end, then reusable. */
  private released: GPUBuffer[] = [];
  /** Cleared tensor buffers by size, for the next tensors of that size (see takeReusable). */
  private readonly reusable = new Map<number, GPUBuffer[]>();
  /** Readbacks each kept buffer has waited through untaken (see trimReusable). */
  private readonly idleTrims = new Map<GPUBuffer, number>();
  /** Set by releaseKeptBuffers: the buffers released before the next submission are destroyed after it. */
  private dropReleased = false;
  private readonly objectIds = new WeakMap<object, number>();
  private objectCount = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly arena: GPUBuffer;
  private readonly arenaBytes = new ArrayBuffer(UNIFORM_ARENA_BYTES);
  private arenaUsed = 0;
  private readonly errors: string[] = [];
  private lostInfo: GPUDeviceLostInfo | null = null;
  private readonly lostListeners = new Set<(info: GPUDeviceLostInfo) => void>();
  private timing: { querySet: GPUQuerySet; passes: number; overflow: boolean; passLabels: string[] | null } | null =
    null;
  readonly canTime: boolean;
  /** Every tensor's buffer usage (the WebGPU globals exist only once a host has provided them). */
  private readonly tensorUsage: GPUBufferUsageFlags;
  /** False on a dry run: dispatches are checked, then dropped (see src/gpu/dry-run.ts). */
  private readonly recordsDispatches: boolean;

  constructor(
    readonly device: GPUDevice,
    options: { adapterName?: string; recordsDispatches?: boolean } = {},
  ) {
    this.adapterName = options.adapterName ?? 'unknown adapter';
    this.recordsDispatches = options.recordsDispatches ?? true;
    this.canTime = device.features.has('timestamp-query');
    this.tensorUsage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.arena = this.memory.track(
      device.createBuffer({
        label: 'uniform arena',
        size: UNIFORM_ARENA_BYTES,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      }),
    );
    if (this.recordsDispatches) this.memory.recycler = (buffer) => this.recycle(buffer);
    device.addEventListener('uncapturederror', (event) => {
      this.errors.push((event as GPUUncapturedErrorEvent).error.message);
    });
    void device.lost.then((info) => {
      this.lostInfo = info;
      for (const listener of this.lostListeners) listener(info);
    });
  }

  /** Calls listener once if the device is lost (driver reset, GPU process crash, destroy()). */
  onDeviceLost(listener: (info: GPUDeviceLostInfo) => void): () => void {
    if (this.lostInfo) listener(this.lostInfo);
    else this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  get isLost(): boolean {
    return this.lostInfo !== null;
  }

  // ---- tensors ------------------------------------------------------------------------------

  /** A new tensor, zero-filled or holding `data`; an 'f16' tensor stores `data` rounded to half precision. */
  tensor(shape: readonly number[], label: string, data?: Float32Array, type: ElementType = 'f32'): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (!Number.isInteger(size) || size < 0)
      throw new RangeError(`Bad tensor shape ${shapeString(shape)} for ${label}`);
    if (data && data.length !== size) {
      throw new RangeError(`${label}: data has ${data.length} values, shape ${shapeString(shape)} needs ${size}`);
    }
    const byteLength = Math.max(16, tensorByteLength(size, type)); // bindings of size 0 are invalid
    if (byteLength > this.device.limits.maxStorageBufferBindingSize) {
      throw new GpuError(
        `${label} ${shapeString(shape)} needs ${byteLength} bytes, more than this GPU binds at once ` +
          `(${this.device.limits.maxStorageBufferBindingSize}). Use a smaller batch.`,
      );
    }
    const buffer = this.memory.track(
      this.takeReusable(byteLength, label) ??
        this.device.createBuffer({ label, size: byteLength, usage: this.tensorUsage }),
    );
    const tensor = new Tensor(buffer, shape, label, this.memory, true, 0, false, type);
    if (data) this.upload(tensor, data);
    return tensor;
  }

  /**
   * Writes data into tensor, after every command recorded so far. An 'f16' tensor takes whole u32 words
   * (an even offset; an odd length only up to its end) and refuses values beyond half precision's range.
   */
  upload(tensor: Tensor, data: Float32Array, elementOffset = 0): void {
    if (elementOffset + data.length > tensor.size) {
      throw new RangeError(`${tensor.label}: ${data.length} values at ${elementOffset} overflow ${tensor.size}`);
    }
    let bytes: ArrayBufferView = data;
    if (tensor.type === 'f16') {
      if (elementOffset % 2 !== 0 || (data.length % 2 !== 0 && elementOffset + data.length !== tensor.size))
        throw new RangeError(`${tensor.label}: half-precision uploads start and end on whole pairs of values`);
      const outOfRange = data.findIndex((v) => !(Math.abs(v) <= HALF_MAX));
      if (outOfRange >= 0) throw new HalfRangeError(tensor.label, outOfRange, data[outOfRange]);
      bytes = packHalves(data);
    }
    this.submit(); // queue writes run before unsubmitted commands; keep program order
    this.device.queue.writeBuffer(
      tensor.buffer,
      tensor.byteOffset + elementOffset * BYTES_PER_ELEMENT[tensor.type],
      bytes.buffer,
      bytes.byteOffset,
      bytes.byteLength,
    );
  }

  zero(tensor: Tensor): void {
    const { offset, size } = tensor.binding; // a whole tensor clears to its buffer's end
    this.commandEncoder(false).clearBuffer(tensor.buffer, offset, size);
  }

  copy(source: Tensor, destination: Tensor, elements = source.size, sourceOffset = 0, destinationOffset = 0): void {
    if (source.type !== 'f32' || destination.type !== 'f32')
      throw new GpuError(`copy: ${source.label} to ${destination.label} copies f32 tensors only`);
    this.commandEncoder(false).copyBufferToBuffer(
      source.buffer,
      source.byteOffset + sourceOffset * 4,
      destination.buffer,
      destination.byteOffset + destinationOffset * 4,
      elements * 4,
    );
  }

  /** The tensor's values (halves widened to f32). */
  async read(tensor: Tensor): Promise<Float32Array> {
    const [values] = await this.readMany([tensor]);
    return values;
  }

  async readMany(tensors: readonly Tensor[]): Promise<Float32Array[]> {
    const staging = tensors.map((t) =>
      this.memory.track(
        this.device.createBuffer({
          label: `read ${t.label}`,
          size: t.byteLength || 4,
          usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        }),
      ),
    );
    const encoder = this.commandEncoder(false);
    tensors.forEach(
      (t, i) => t.size && encoder.copyBufferToBuffer(t.buffer, t.byteOffset, staging[i], 0, t.byteLength),
    );
    this.submit();
    try {
      await this.waitForGpu(Promise.all(staging.map((s) => s.mapAsync(GPUMapMode.READ))));
    } catch (error) {
      staging.forEach((s) => this.memory.release(s));
      throw error;
    }
    this.trimReusable();
    const result = staging.map((s, i) => {
      const { byteLength, size, type } = tensors[i];
      const bytes = s.getMappedRange().slice(0, byteLength);
      const values = type === 'f16' ? unpackHalves(new Uint32Array(bytes), size) : new Float32Array(bytes);
      s.unmap();
      return values;
    });
    staging.forEach((s) => this.memory.release(s));
    this.throwIfErrors();
    return result;
  }

  // ---- dispatch -----------------------------------------------------------------------------

  /** Whether the device multiplies in half precision (the adapter's shader-f16, which openDevice asks for). */
  get hasF16Arithmetic(): boolean {
    return this.device.features.has('shader-f16');
  }

  pipeline(
    shader: ShaderName,
    entry: string,
    constants: Record<string, number> = {},
    arithmetic: Arithmetic = 'f32',
  ): GPUComputePipeline {
    const key = `${shader}:${arithmetic}:${entry}:${JSON.stringify(constants)}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const moduleKey = `${shader}:${arithmetic}`;
      let module = this.modules.get(moduleKey);
      if (!module) {
        const code = shaderVariantSource(shader, arithmetic);
        module = this.device.createShaderModule({ label: `${shader} (${arithmetic})`, code });
        this.modules.set(moduleKey, module);
      }
      pipeline = this.device.createComputePipeline({
        label: `${shader}.${entry}`,
        layout: 'auto',
        compute: { module, entryPoint: entry, constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  dispatch(d: Dispatch): void {
    const [x, y = 1, z = 1] = d.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxPerDimension = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxPerDimension || y > maxPerDimension || z > maxPerDimension) {
      throw new GpuError(
        `${d.shader}.${d.entry}: grid ${x}x${y}x${z} exceeds ${maxPerDimension} workgroups per dimension`,
      );
    }
    const shader = shaderInterface(d.shader);
    const given = Object.entries(d.bindings);
    const numbers = shader.bindingNumbers(
      d.entry,
      given.map(([name]) => name),
      d.params !== undefined,
    );
    for (const [name, b] of given) {
      if (b instanceof Tensor && b.type === 'f16' && !shader.readsWords(name))
        throw new GpuError(`${d.shader}.${d.entry}: ${name} reads f32 values, and ${b.label} holds f16 ones`);
    }
    const entries: GPUBindGroupEntry[] = given.map(([, b], i) => ({
      binding: numbers[i],
      resource: b instanceof Tensor ? b.binding : { buffer: b },
    }));
    // A dry run (the memory planner) checks the grid, the bindings and the parameters, then drops the dispatch.
    if (!this.recordsDispatches) {
      if (d.params) shader.params!.write(d.entry, d.params, new DataView(this.arenaBytes), 0);
      return;
    }
    if (d.arithmetic === 'f16' && !this.hasF16Arithmetic) {
      throw new GpuError(
        `${d.shader}.${d.entry}: f16 arithmetic needs the adapter's shader-f16 feature, which ${this.adapterName} does not offer`,
      );
    }
    if (d.params) {
      const layout = shader.params!; // bindingNumbers checked that the entry point reads p
      const size = layout.byteLength;
      if (this.arenaUsed + size > UNIFORM_ARENA_BYTES) this.submit();
      layout.write(d.entry, d.params, new DataView(this.arenaBytes), this.arenaUsed);
      entries.push({ binding: 0, resource: { buffer: this.arena, offset: this.arenaUsed, size } });
      this.arenaUsed += Math.ceil(size / UNIFORM_ALIGNMENT) * UNIFORM_ALIGNMENT;
    }
    const pipeline = this.pipeline(d.shader, d.entry, d.constants, d.arithmetic);
    const bindGroup = this.bindGroup(pipeline, `${d.shader}.${d.entry}`, entries);
    const profiling = this.timing?.passLabels;
    if (profiling) this.endPass();
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (profiling) {
      profiling.push(`${d.shader}.${d.entry}`);
      this.endPass();
    }
  }

  /** Sends every recorded command to the GPU. */
  submit(): void {
    if (!this.encoder) return;
    this.endPass();
    // After every command that uses them: a reused buffer starts zeroed, as a new one does.
    if (!this.dropReleased) for (const buffer of this.released) this.encoder.clearBuffer(buffer);
    if (this.arenaUsed) this.device.queue.writeBuffer(this.arena, 0, this.arenaBytes, 0, this.arenaUsed);
    this.arenaUsed = 0;
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    for (const buffer of this.released) {
      if (this.dropReleased) buffer.destroy();
      else this.addReusable(buffer);
    }
    this.released = [];
    this.dropReleased = false;
    this.memory.destroyDeferred();
  }

  /**
   * Gives back to the GPU the buffers kept for reuse, and those released since the last submission
   * once it is made: after freeing something large that will not come back (a model), so that what is
   * loaded next does not find the old one's memory still held.
   */
  releaseKeptBuffers(): void {
    for (const buffers of this.reusable.values()) buffers.forEach((buffer) => buffer.destroy());
    this.reusable.clear();
    this.idleTrims.clear();
    this.dropReleased = true;
  }

  /** Submits and waits until the GPU has finished everything; throws on recorded GPU errors. */
  async sync(): Promise<void> {
    this.submit();
    await this.waitForGpu(this.device.queue.onSubmittedWorkDone());
    if (this.lostInfo) throw deviceLostError(this.lostInfo);
    this.trimReusable();
    this.throwIfErrors();
  }

  /**
   * Waits for GPU work (mapAsync, onSubmittedWorkDone). When the browser's GPU process crashes,
   * pending work fails with the transport's words ("A valid external Instance reference no longer
   * exists") before `device.lost` resolves; waiting briefly for it reports the device loss it is,
   * which the studio recovers from, instead of an unexplained failure.
   */
  private async waitForGpu<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      if (!this.lostInfo) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([this.device.lost, new Promise((resolve) => (timer = setTimeout(resolve, LOSS_GRACE_MS)))]);
        clearTimeout(timer);
      }
      throw this.lostInfo ? deviceLostError(this.lostInfo) : error;
    }
  }

  /**
   * Runs work() and returns wall-clock milliseconds until the GPU finished, and GPU milliseconds
   * from timestamp queries when the adapter has them (summed over compute passes). With
   * `perKernel`, every dispatch gets its own pass and `byKernel` sums GPU time and counts dispatches
   * per shader entry point (a profile: the extra passes cost some speed).
   */
  async time(
    work: () => void | Promise<void>,
    options: { perKernel?: boolean } = {},
  ): Promise<{ wallMs: number; gpuMs: number | null; byKernel: Map<string, KernelTime> | null }> {
    await this.sync();
    if (this.canTime) {
      this.timing = {
        querySet: this.device.createQuerySet({ type: 'timestamp', count: 2 * MAX_TIMED_PASSES }),
        passes: 0,
        overflow: false,
        passLabels: options.perKernel ? [] : null,
      };
    }
    const start = performance.now();
    await work();
    this.endPass();
    const timing = this.timing;
    this.timing = null;
    let gpuMs: number | null = null;
    let byKernel: Map<string, KernelTime> | null = null;
    if (timing && timing.passes > 0 && !timing.overflow) {
      const count = 2 * timing.passes;
      const resolved = this.memory.track(
        this.device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
      );
      const readable = this.memory.track(
        this.device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      );
      const encoder = this.commandEncoder(false);
      encoder.resolveQuerySet(timing.querySet, 0, count, resolved, 0);
      encoder.copyBufferToBuffer(resolved, 0, readable, 0, count * 8);
      await this.sync();
      await this.waitForGpu(readable.mapAsync(GPUMapMode.READ));
      const stamps = new BigUint64Array(readable.getMappedRange().slice(0));
      readable.unmap();
      let nanoseconds = 0n;
      for (let i = 0; i < timing.passes; i++) nanoseconds += stamps[2 * i + 1] - stamps[2 * i];
      gpuMs = Number(nanoseconds) / 1e6;
      if (timing.passLabels) {
        byKernel = new Map();
        for (const [i, label] of timing.passLabels.entries()) {
          const kernel = byKernel.get(label) ?? { ms: 0, dispatches: 0 };
          byKernel.set(label, {
            ms: kernel.ms + Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6,
            dispatches: kernel.dispatches + 1,
          });
        }
      }
      this.memory.release(resolved);
      this.memory.release(readable);
      timing.querySet.destroy();
    } else {
      await this.sync();
      timing?.querySet.destroy();
    }
    return { wallMs: performance.now() - start, gpuMs, byKernel };
  }

  destroy(): void {
    this.submit();
    this.device.destroy();
  }

  // ---- internals ----------------------------------------------------------------------------

  /**
   * A released tensor buffer is kept, not destroyed: cleared when the commands recorded so far are
   * submitted, then handed to the next tensor of its size. A training step frees and allocates the
   * same activations every step, so after the first it makes no buffers, and its bind groups are
   * found in the cache.
   */
  private recycle(buffer: GPUBuffer): boolean {
    if (buffer.usage !== this.tensorUsage) return false;
    this.released.push(buffer);
    if (!this.encoder) this.commandEncoder(false); // so that a submission comes to clear it
    return true;
  }

  private addReusable(buffer: GPUBuffer): void {
    const sameSize = this.reusable.get(buffer.size);
    if (sameSize) sameSize.push(buffer);
    else this.reusable.set(buffer.size, [buffer]);
  }

  /**
   * A kept buffer of exactly `size` bytes, or null: the one that last held a tensor of this label if
   * there is one, so that a step's tensors get the same buffers as last step's and their bind groups
   * are found again.
   */
  private takeReusable(size: number, label: string): GPUBuffer | null {
    const sameSize = this.reusable.get(size);
    if (!sameSize?.length) return null;
    const labelled = sameSize.findLastIndex((buffer) => buffer.label === label);
    const [buffer] = sameSize.splice(labelled >= 0 ? labelled : sameSize.length - 1, 1);
    this.idleTrims.delete(buffer);
    buffer.label = label;
    return buffer;
  }

  /**
   * At each readback, destroys the kept buffers that no tensor took over the last MAX_IDLE_READBACKS
   * (a training step makes a few): what the work no longer allocates (another batch size, the end of
   * a run, a destroyed model) is not held for long.
   */
  private trimReusable(): void {
    for (const [size, buffers] of this.reusable) {
      const kept: GPUBuffer[] = [];
      for (const buffer of buffers) {
        const idle = (this.idleTrims.get(buffer) ?? 0) + 1;
        if (idle <= MAX_IDLE_READBACKS) {
          this.idleTrims.set(buffer, idle);
          kept.push(buffer);
          continue;
        }
        this.idleTrims.delete(buffer);
        buffer.destroy();
      }
      this.reusable.set(size, kept);
    }
  }

  private bindGroup(pipeline: GPUComputePipeline, label: string, entries: GPUBindGroupEntry[]): GPUBindGroup {
    const resources = entries.map(({ binding, resource }) => {
      const { buffer, offset = 0, size } = resource as GPUBufferBinding;
      return `${binding}:${this.objectId(buffer)}:${offset}:${size}`;
    });
    const key = `${this.objectId(pipeline)}|${resources.join(',')}`;
    let group = this.bindGroups.get(key);
    if (group)
      this.bindGroups.delete(key); // re-inserted below as the most recently used
    else group = this.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
    this.bindGroups.set(key, group);
    if (this.bindGroups.size > CACHED_BIND_GROUPS) this.bindGroups.delete(this.bindGroups.keys().next().value!);
    return group;
  }

  private objectId(object: object): number {
    let id = this.objectIds.get(object);
    if (id === undefined) this.objectIds.set(object, (id = this.objectCount++));
    return id;
  }

  private commandEncoder(forPass: boolean): GPUCommandEncoder {
    if (!forPass) this.endPass();
    if (!this.encoder) {
      this.encoder = this.device.createCommandEncoder();
      this.memory.deferDestruction();
    }
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    const encoder = this.commandEncoder(true);
    let timestampWrites: GPUComputePassTimestampWrites | undefined;
    if (this.timing && this.timing.passes >= MAX_TIMED_PASSES) this.timing.overflow = true;
    else if (this.timing) {
      const i = this.timing.passes++;
      timestampWrites = {
        querySet: this.timing.querySet,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      };
    }
    this.pass = encoder.beginComputePass({ timestampWrites });
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  private throwIfErrors(): void {
    if (this.errors.length) {
      const messages = this.errors.splice(0);
      throw new GpuError(`GPU validation failed: ${messages.join(' | ')}`);
    }
  }
}
