// The model the engine has loaded, with the last adapter it used on it: loading from Blobs (one weights file
// or shards), loading them again in another precision, and the inference requests (predict, evaluate)
// that the studio makes on the loaded model.

import { assertAdapterMatchesBase, decodeAdapterFile, type AdapterMetadata } from '../adapters/adapter-file';
import { AdapterSet } from '../adapters/block-lora';
import type { GpuContext } from '../gpu/context';
import { ClipModel } from '../model/clip';
import { weightFilesFromBlobs } from '../model/weights';
import { DEFAULT_TEMPLATE, type ClassPrompts } from '../common/prompts';
import { PRECISION_NUMERICS, precisionOf, type Precision } from '../common/recipe';
import { classEmbeddings, classify } from '../model/zero-shot';
import { evaluate } from '../training/trainer';
import { decodeImage, decodeImages } from './decode';
import type {
  AdapterRef,
  EvaluateRequest,
  EvaluateResult,
  LoadedModel,
  ModelFileBlobs,
  PredictRequest,
  PredictResult,
} from './protocol';

interface LoadedAdapter {
  id: string;
  set: AdapterSet;
  meta: AdapterMetadata;
}

/** Class embeddings kept for repeated predictions (a handful of adapter and class-list combinations). */
const EMBEDDING_CACHE_ENTRIES = 8;

export class ModelSession {
  private adapter: LoadedAdapter | null = null;
  private readonly embeddings = new Map<string, Float32Array>();

  private constructor(
    readonly model: ClipModel,
    /** What it was loaded from, kept to load the weights again in another precision. */
    private readonly source: { id: string; revision?: string; files: ModelFileBlobs },
  ) {}

  /** Streams the weights from the Blobs to the GPU, one tensor at a time, in `precision` (f32 unless given). */
  static async load(
    ctx: GpuContext,
    { id, revision }: { id: string; revision?: string },
    files: ModelFileBlobs,
    onProgress: (loaded: number, total: number) => void,
    precision: Precision = 'f32',
  ): Promise<ModelSession> {
    const model = await ClipModel.load(
      ctx,
      {
        id,
        revision,
        config: await files.config.text(),
        weights: await weightFilesFromBlobs(files.weights),
        vocab: await files.vocab.text(),
        merges: await files.merges.text(),
        preprocessor: await files.preprocessor?.text(),
      },
      { ...PRECISION_NUMERICS[precision], onProgress },
    );
    return new ModelSession(model, { id, revision, files });
  }

  get precision(): Precision {
    return precisionOf(this.model.weights);
  }

  /**
   * This session when its weights are held in `precision`; otherwise a new one with them loaded again in
   * it from the same files. The caller replaces this one with it (the two are on the GPU meanwhile, so a
   * failed load leaves this one as it was).
   */
  async inPrecision(precision: Precision, onProgress: (loaded: number, total: number) => void): Promise<ModelSession> {
    if (precision === this.precision) return this;
    const { id, revision, files } = this.source;
    return ModelSession.load(this.model.ctx, { id, revision }, files, onProgress, precision);
  }

  describe(): LoadedModel {
    const { model } = this;
    return {
      id: model.id,
      revision: model.revision,
      fingerprint: model.weights.fingerprint,
      config: model.config,
      weightBytes: model.weights.byteLength,
      precision: this.precision,
    };
  }

  /** Reads an adapter file and checks that it was made for this model (AdapterFileError, AdapterMismatchError). */
  async readAdapter(file: Blob, fileName: string): Promise<ReturnType<typeof decodeAdapterFile>> {
    const adapter = decodeAdapterFile(new Uint8Array(await file.arrayBuffer()), fileName);
    assertAdapterMatchesBase(adapter.meta, this.model.id, this.model.weights.fingerprint, fileName);
    return adapter;
  }

  async predict({ image, classNames, adapter: ref }: PredictRequest): Promise<PredictResult> {
    const adapter = ref ? await this.useAdapter(ref) : null;
    const names = adapter ? adapter.meta.classNames : classNames;
    const prompts = adapter
      ? { template: adapter.meta.promptTemplate, classPrompts: adapter.meta.classPrompts ?? {} }
      : { template: DEFAULT_TEMPLATE, classPrompts: {} };
    const pixels = await decodeImage(image, 'This image', this.model.preprocessor.size);
    const probabilities = async (withAdapter: LoadedAdapter | null) => {
      const embedding = await this.classEmbeddings(names, prompts, withAdapter);
      const [prediction] = await classify(this.model, [pixels], embedding, { adapters: withAdapter?.set ?? null });
      return [...prediction.probabilities];
    };
    return {
      classNames: [...names],
      withoutAdapter: await probabilities(null),
      withAdapter: adapter ? await probabilities(adapter) : null,
    };
  }

  /** Accuracy of the base model and of the adapter on labelled images of the adapter's classes. */
  async evaluate({ adapter: ref, images }: EvaluateRequest): Promise<EvaluateResult> {
    const adapter = await this.useAdapter(ref);
    const data = {
      images: await decodeImages(images.images, images.names, this.model.preprocessor.size),
      labels: images.labels,
    };
    const { classNames, promptTemplate, classPrompts } = adapter.meta;
    return {
      zeroShot: await evaluate(this.model, classNames, data, null, promptTemplate, classPrompts),
      adapted: await evaluate(this.model, classNames, data, adapter.set, promptTemplate, classPrompts),
    };
  }

  destroy(): void {
    this.adapter?.set.destroy();
    this.adapter = null;
    this.model.destroy();
  }

  /** The adapter on the GPU, loading it unless it is the one used last (ids name immutable files). */
  private async useAdapter(ref: AdapterRef): Promise<LoadedAdapter> {
    if (this.adapter?.id === ref.id) return this.adapter;
    const { meta, tensors } = await this.readAdapter(ref.file, 'the adapter');
    const initial = new Map([...tensors].map(([name, tensor]) => [name, tensor.data]));
    const set = AdapterSet.create(this.model.ctx, this.model.config, meta, { initial });
    this.adapter?.set.destroy();
    this.adapter = { id: ref.id, set, meta };
    return this.adapter;
  }

  private async classEmbeddings(
    classNames: readonly string[],
    { template, classPrompts }: { template: string; classPrompts: ClassPrompts },
    adapter: LoadedAdapter | null,
  ): Promise<Float32Array> {
    const key = JSON.stringify([adapter?.id ?? null, template, classPrompts, classNames]);
    let embedding = this.embeddings.get(key);
    if (!embedding) {
      embedding = await classEmbeddings(this.model, classNames, [template], adapter?.set ?? null, classPrompts);
      if (this.embeddings.size >= EMBEDDING_CACHE_ENTRIES) this.embeddings.delete(this.embeddings.keys().next().value!);
      this.embeddings.set(key, embedding);
    }
    return embedding;
  }
}
