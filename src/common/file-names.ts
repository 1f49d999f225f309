// The names of the files octoclip reads and writes: the studio, the worker and the CLI agree on them here.

/** The files of a Hugging Face CLIP repo that octoclip uses, by their Hub names. */
export const MODEL_FILES = {
  config: 'config.json',
  weights: 'model.safetensors',
  vocab: 'vocab.json',
  merges: 'merges.txt',
  preprocessor: 'preprocessor_config.json',
} as const;

/** Files a model cannot load without (the image processor settings have defaults). */
export const REQUIRED_MODEL_FILES: readonly string[] = [MODEL_FILES.config, MODEL_FILES.weights, MODEL_FILES.vocab, MODEL_FILES.merges];

/** The file name extension octoclip gives adapter files. */
export const ADAPTER_FILE_EXTENSION = '.octoclip.safetensors';

/** Hugging Face PEFT's two files of a LoRA adapter. */
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';
export const PEFT_CONFIG_FILE = 'adapter_config.json';
