// The studio's sections and which one is shown, kept in the URL hash (#/gpu) so that reloads, the
// back button and links work. Screens are mapped to sections in App, so that screens can link to
// sections without importing one another.

import { useSyncExternalStore } from 'react';

export type SectionId = 'gpu' | 'model' | 'dataset' | 'train' | 'evaluate' | 'try' | 'adapters' | 'workspace';

export interface Section {
  id: SectionId;
  title: string;
  /** One line on what the section is for. */
  summary: string;
}

export const SECTIONS: readonly Section[] = [
  { id: 'gpu', title: 'GPU', summary: 'The WebGPU device the engine trains on' },
  { id: 'model', title: 'Model', summary: 'Load CLIP weights into the browser' },
  { id: 'dataset', title: 'Dataset', summary: 'Your labelled images' },
  { id: 'train', title: 'Train', summary: 'Fine-tune with Block-LoRA' },
  { id: 'evaluate', title: 'Evaluate', summary: 'Accuracy before and after' },
  { id: 'try', title: 'Try it', summary: 'Classify new images' },
  { id: 'adapters', title: 'Adapter library', summary: 'Saved adapters: export and import' },
  { id: 'workspace', title: 'Workspace', summary: 'Everything in one file: export, import elsewhere' },
];

const DEFAULT_SECTION = SECTIONS[0];

export function sectionHref(id: SectionId): string {
  return `#/${id}`;
}

function sectionFromHash(hash: string): Section {
  const id = hash.replace(/^#\/?/, '');
  return SECTIONS.find((s) => s.id === id) ?? DEFAULT_SECTION;
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
}

/** The section the URL names, or the first one when it names none. */
export function useCurrentSection(): Section {
  const hash = useSyncExternalStore(subscribe, () => window.location.hash);
  return sectionFromHash(hash);
}
