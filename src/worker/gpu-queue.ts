// One piece of GPU work at a time. The model's tensors and the context's command encoder are shared,
// so requests that run kernels take turns here; a training run queues once per step, which lets a
// prediction slip in between two steps instead of waiting for the whole run.

let tail: Promise<unknown> = Promise.resolve();

/** Runs work after every piece queued before it has settled. */
export function exclusive<T>(work: () => Promise<T>): Promise<T> {
  const run = tail.then(work);
  tail = run.catch(() => undefined);
  return run;
}
