// The dataset in IndexedDB: classes (in label order) and their images, each image stored with a
// thumbnail. Writes that touch several records (a folder of new classes, a class and its images) are
// single transactions.

import { DEFAULT_TEMPLATE } from '../common/prompts';
import { studioDatabase, write, type ClassRecord, type ImageRecord } from './db';

export interface StoredDataset {
  classes: ClassRecord[];
  images: ImageRecord[];
}

/** The dataset's prompt template: the one stored, or the recipe's. */
export async function loadPromptTemplate(): Promise<string> {
  const record = await (await studioDatabase()).get('datasetSettings', 'dataset');
  return record?.promptTemplate ?? DEFAULT_TEMPLATE;
}

export async function savePromptTemplate(promptTemplate: string): Promise<void> {
  await write(['datasetSettings'], async (tx) => {
    await tx.objectStore('datasetSettings').put({ id: 'dataset', promptTemplate });
  });
}

/** Gives a class its own prompt, or (undefined) gives it the template's again. */
export async function setClassPrompt(id: string, prompt: string | undefined): Promise<void> {
  await write(['classes'], async (tx) => {
    const record = await tx.objectStore('classes').get(id);
    if (record) await tx.objectStore('classes').put(withPrompt(record, prompt));
  });
}

/** The class with this prompt of its own, or (undefined) with none. */
export function withPrompt(record: ClassRecord, prompt: string | undefined): ClassRecord {
  const { prompt: _previous, ...rest } = record;
  return prompt === undefined ? rest : { ...rest, prompt };
}

/** Classes by position; images in the order they were added (the order fewShotSplit sees them in). */
export async function loadDataset(): Promise<StoredDataset> {
  const db = await studioDatabase();
  const tx = db.transaction(['classes', 'images']);
  const [classes, images] = await Promise.all([tx.objectStore('classes').getAll(), tx.objectStore('images').getAll()]);
  await tx.done;
  classes.sort((a, b) => a.position - b.position);
  images.sort((a, b) => a.addedAt - b.addedAt || a.id.localeCompare(b.id));
  return { classes, images };
}

/** Adds new classes and images together: a dropped folder lands whole or not at all. */
export async function addToDataset(classes: readonly ClassRecord[], images: readonly ImageRecord[]): Promise<void> {
  await write(['classes', 'images'], async (tx) => {
    for (const record of classes) await tx.objectStore('classes').add(record);
    for (const record of images) await tx.objectStore('images').add(record);
  });
}

export async function renameClass(id: string, name: string): Promise<void> {
  await write(['classes'], async (tx) => {
    const record = await tx.objectStore('classes').get(id);
    if (record) await tx.objectStore('classes').put({ ...record, name });
  });
}

/** Deletes a class with all its images; returns what was deleted, which addToDataset puts back. */
export async function deleteClass(id: string): Promise<StoredDataset> {
  return write(['classes', 'images'], async (tx) => {
    const images = tx.objectStore('images');
    const deleted = await images.index('byClass').getAll(id);
    for (const image of deleted) await images.delete(image.id);
    const record = await tx.objectStore('classes').get(id);
    await tx.objectStore('classes').delete(id);
    return { classes: record ? [record] : [], images: deleted };
  });
}

/** Deletes an image; returns it (undefined when it was not there), which addToDataset puts back. */
export async function deleteImage(id: string): Promise<ImageRecord | undefined> {
  return write(['images'], async (tx) => {
    const record = await tx.objectStore('images').get(id);
    await tx.objectStore('images').delete(id);
    return record;
  });
}

/** The stored images with these ids, in the same order; undefined where one was deleted. */
export async function getImages(ids: readonly string[]): Promise<(ImageRecord | undefined)[]> {
  const db = await studioDatabase();
  const tx = db.transaction('images');
  const records = await Promise.all(ids.map((id) => tx.store.get(id)));
  await tx.done;
  return records;
}
