// The matmul configurations the engine tuned on this browser's adapters, one record per adapter. The page
// hands them to the engine when it opens a device, so that each adapter is tuned once (src/kernels/matmul-tune.ts).

import type { MatmulTuning } from '../worker/protocol';
import { studioDatabase, write } from './db';

export async function readMatmulTunings(): Promise<MatmulTuning[]> {
  return (await studioDatabase()).getAll('matmulTunings');
}

/** Stores a tuning, replacing the adapter's previous one. */
export async function saveMatmulTuning(tuning: MatmulTuning): Promise<void> {
  await write(['matmulTunings'], (tx) =>
    tx
      .objectStore('matmulTunings')
      .put(tuning)
      .then(() => undefined),
  );
}
