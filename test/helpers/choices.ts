// The studio's adapter choice (src/worker/protocol.ts) that the worker tests start from, each changing
// what it is about: Block-LoRA r=2 n=2 on q and v of both towers.

import type { AdapterChoice } from '../../src/worker/protocol';

export const ADAPTER_CHOICE: AdapterChoice = {
  method: 'block-lora',
  rank: 2,
  blocks: 2,
  alpha: 1,
  scalingRule: 'alpha/sqrt(r)',
  dropout: 0.25,
  targets: ['q_proj', 'v_proj'],
  towers: ['text', 'vision'],
};
