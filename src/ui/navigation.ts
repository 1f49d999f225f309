// The studio's sections and which one is shown, kept in the URL hash (#/gpu) so that reloads, the
// back button and links work. Sections without a screen are listed as coming next.

import { useSyncExternalStore, type ComponentType } from 'react';
import { DeviceScreen } from './screens/DeviceScreen';

export interface Section {
  id: string;
  title: string;
  /** One line on what the section is for. */
  summary: string;
  /** Absent while the section is still to come. */
  screen?: ComponentType;
}

export const SECTIONS: readonly Section[] = [
  { id: 'gpu', title: 'GPU', summary: 'The WebGPU device the engine trains on', screen: DeviceScreen },
  { id: 'model', title: 'Model', summary: 'Load CLIP weights into the browser' },
  { id: 'dataset', title: 'Dataset', summary: 'Your labelled images' },
  { id: 'train', title: 'Train', summary: 'Fine-tune with Block-LoRA' },
  { id: 'evaluate', title: 'Evaluate', summary: 'Accuracy before and after' },
  { id: 'try', title: 'Try it', summary: 'Classify new images' },
  { id: 'adapters', title: 'Adapter library', summary: 'Saved adapters: export and import' },
];

const DEFAULT_SECTION = SECTIONS[0];

export function sectionHref(section: Section): string {
  return `#/${section.id}`;
}

function sectionFromHash(hash: string): Section {
  const id = hash.replace(/^#\/?/, '');
  const section = SECTIONS.find((s) => s.id === id);
  return section?.screen ? section : DEFAULT_SECTION;
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
}

/** The section the URL names, or the first one when it names none that is ready. */
export function useCurrentSection(): Section {
  const hash = useSyncExternalStore(subscribe, () => window.location.hash);
  return sectionFromHash(hash);
}
