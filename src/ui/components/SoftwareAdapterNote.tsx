// The warning that the browser gave a software (CPU) WebGPU adapter, on the GPU screen and beside Start.

import { Note } from './Notice';

export function SoftwareAdapterNote({ adapterName }: { adapterName: string }) {
  return (
    <Note>
      <strong data-testid="software-adapter">This browser gave a software GPU adapter ({adapterName}).</strong> It runs
      WebGPU on the CPU, often hundreds of times slower than a GPU: one ViT-B/32 step can take half a minute. Enable
      hardware acceleration in the browser, or use a computer with a GPU, for full-size models.
    </Note>
  );
}
