// The example page: load a model and a downloaded adapter with the library API, then classify a picked,
// dropped or webcam image. `octoclip` is the package (examples/vite.config.ts points it at this checkout).

import { loadClassifier, type BrowserImage, type Classifier } from 'octoclip';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $<HTMLParagraphElement>('status');
let loaded: { key: string; classifier: Classifier<BrowserImage> } | null = null;

/** The classifier for the chosen model and adapter, loaded once per choice. */
async function classifier(): Promise<Classifier<BrowserImage>> {
  const model = $<HTMLInputElement>('model').value.trim();
  const adapter = $<HTMLInputElement>('adapter').files?.[0];
  if (!adapter) throw new Error('Choose an adapter file first.');
  const key = `${model}\n${adapter.name}\n${adapter.lastModified}`;
  if (loaded?.key !== key) {
    loaded?.classifier.dispose();
    loaded = null;
    status.textContent = `Loading ${model} and ${adapter.name}…`;
    loaded = { key, classifier: await loadClassifier({ model, adapter }) };
  }
  return loaded.classifier;
}

async function show(image: BrowserImage): Promise<void> {
  try {
    const probabilities = await (await classifier()).classify(image);
    $<HTMLOListElement>('result').replaceChildren(
      ...probabilities.map(({ className, probability }) => {
        const item = document.createElement('li');
        item.textContent = `${className}: ${(100 * probability).toFixed(1)}%`;
        return item;
      }),
    );
    status.textContent = `Most likely: ${probabilities[0].className}`;
  } catch (error) {
    status.textContent = (error as Error).message;
  }
}

$<HTMLInputElement>('image').addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) void show(file);
});
document.addEventListener('dragover', (event) => event.preventDefault());
document.addEventListener('drop', (event) => {
  event.preventDefault();
  const file = event.dataTransfer?.files[0];
  if (file) void show(file);
});
$<HTMLButtonElement>('camera').addEventListener('click', async () => {
  const video = $<HTMLVideoElement>('video');
  try {
    video.srcObject ??= await navigator.mediaDevices.getUserMedia({ video: true });
    video.hidden = false;
    await video.play();
    await show(await createImageBitmap(video));
  } catch (error) {
    status.textContent = `No camera: ${(error as Error).message}`;
  }
});
