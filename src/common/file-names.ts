// The names of the files octoclip reads and writes: the studio, the worker and the CLI agree on them here.

/** The files of a Hugging Face CLIP repo that octoclip uses, by their Hub names (weights in one file, or an index and its shards). */
export const MODEL_FILES = {
  config: 'config.json',
  weights: 'model.safetensors',
  weightsIndex: 'model.safetensors.index.json',
  vocab: 'vocab.json',
  merges: 'merges.txt',
  preprocessor: 'preprocessor_config.json',
} as const;

/** The text files a model cannot load without; it also needs its weights (model.safetensors, or the index and its shards). The image processor settings have defaults. */
export const REQUIRED_TEXT_FILES: readonly string[] = [MODEL_FILES.config, MODEL_FILES.vocab, MODEL_FILES.merges];

/** PyTorch's pickle checkpoint: refused, never read (unpickling runs arbitrary code). */
export const PICKLE_WEIGHTS_FILE = 'pytorch_model.bin';

/** The file name extension octoclip gives adapter files. */
export const ADAPTER_FILE_EXTENSION = '.octoclip.safetensors';

/** Hugging Face PEFT's two files of a LoRA adapter. */
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';
export const PEFT_CONFIG_FILE = 'adapter_config.json';
