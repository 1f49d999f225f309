// The library's classifier, the same in Node and in a browser: a CLIP model, optionally an octoclip adapter
// (its classes and prompt), and four calls: classify, embedImages, embedTexts, dispose. The entry points
// (node.ts, browser.ts) only say where the model, the adapter and the images come from.

import { assertAdapterMatchesBase, decodeAdapterFile } from '../adapters/adapter-file';
import { AdapterSet } from '../adapters/block-lora';
import type { GpuContext } from '../gpu/context';
import { ClipModel, type ClipModelFiles } from '../model/clip';
import { preprocessBatch, type RgbaImage } from '../model/preprocessor';
import { DEFAULT_TEMPLATE } from '../common/prompts';
import { classEmbeddings, classify } from '../model/zero-shot';

export interface ClassProbability {
  className: string;
  probability: number;
}

export interface ClassifierOptions {
  /** Class names for zero-shot use without an adapter (an adapter brings its own). */
  classes?: readonly string[];
  /** Prompt template, `{}` standing for the class name; default the adapter's, else "a photo of a {}.". */
  template?: string;
}

/** Images per GPU pass. */
const BATCH = 16;

export class Classifier<Image> {
  private constructor(
    private readonly model: ClipModel,
    private readonly adapters: AdapterSet | null,
    /** The classes `classify` chooses from, by label. */
    readonly classNames: readonly string[],
    /** The prompt the class names are put in. */
    readonly template: string,
    private readonly classEmbedding: Float32Array,
    private readonly decode: (image: Image) => Promise<RgbaImage>,
  ) {}

  /**
   * Loads the model onto `ctx`, and the adapter (an octoclip adapter file's bytes) checked against it. Without an
   * adapter, `options.classes` are needed to classify; embeddings work either way.
   */
  static async create<Image>(
    ctx: GpuContext,
    files: ClipModelFiles,
    adapterFile: { bytes: Uint8Array; name: string } | null,
    options: ClassifierOptions,
    decode: (image: Image) => Promise<RgbaImage>,
  ): Promise<Classifier<Image>> {
    const adapter = adapterFile ? decodeAdapterFile(adapterFile.bytes, adapterFile.name) : null;
    if (adapter && options.classes)
      throw new Error("classes are for use without an adapter: an adapter's classes are the ones it was trained on");
    const model = await ClipModel.load(ctx, files);
    try {
      if (adapter) assertAdapterMatchesBase(adapter.meta, model.id, model.weights.fingerprint, adapterFile!.name);
      const adapters =
        adapter &&
        AdapterSet.create(ctx, model.config, adapter.meta, {
          initial: new Map([...adapter.tensors].map(([name, t]) => [name, t.data])),
        });
      const classNames = adapter?.meta.classNames ?? [...(options.classes ?? [])];
      const template = options.template ?? adapter?.meta.promptTemplate ?? DEFAULT_TEMPLATE;
      const classPrompts = options.template === undefined ? adapter?.meta.classPrompts : undefined;
      const embedding = classNames.length
        ? await classEmbeddings(model, classNames, [template], adapters, classPrompts)
        : new Float32Array(0);
      return new Classifier(model, adapters, classNames, template, embedding, decode);
    } catch (error) {
      model.destroy();
      throw error;
    }
  }

  /** The class probabilities of one image, most probable first. */
  async classify(image: Image): Promise<ClassProbability[]> {
    if (!this.classNames.length) throw new Error('no classes to choose from: load an adapter, or pass classes');
    const [prediction] = await classify(this.model, [await this.decode(image)], this.classEmbedding, {
      adapters: this.adapters,
    });
    return this.classNames
      .map((className, c) => ({ className, probability: prediction.probabilities[c] }))
      .sort((x, y) => y.probability - x.probability);
  }

  /** Image features (CLIP's projected image embeddings, not normalised), with the adapter if there is one. */
  async embedImages(images: readonly Image[]): Promise<Float32Array[]> {
    const features: Float32Array[] = [];
    for (let start = 0; start < images.length; start += BATCH) {
      const batch = await Promise.all(images.slice(start, start + BATCH).map((image) => this.decode(image)));
      const pixels = preprocessBatch(this.model.ctx, batch, this.model.preprocessor);
      const output = this.model.imageFeatures(pixels, batch.length, this.adapters);
      features.push(...this.rows(await this.model.ctx.read(output), batch.length));
      pixels.destroy();
      output.destroy();
    }
    return features;
  }

  /** Text features (CLIP's projected text embeddings, not normalised), with the adapter if there is one. */
  async embedTexts(texts: readonly string[]): Promise<Float32Array[]> {
    const output = this.model.textFeatures(this.model.tokenize(texts), this.adapters);
    const features = this.rows(await this.model.ctx.read(output), texts.length);
    output.destroy();
    return features;
  }

  /** Frees the GPU memory and the device; the classifier cannot be used afterwards. */
  dispose(): void {
    this.adapters?.destroy();
    this.model.destroy();
    this.model.ctx.destroy();
  }

  private rows(values: Float32Array, count: number): Float32Array[] {
    const dim = this.model.config.projectionDim;
    return Array.from({ length: count }, (_, i) => values.slice(i * dim, (i + 1) * dim));
  }
}
