// Whether a training run can start, and if not, every reason with what to do about it. The Train
// screen's checklist shows these and Start is enabled only when there are none; start() refuses on
// the same list, so the rule is written once.

import type { ClassRecord } from '../storage/db';
import type { LoadedModel, TrainingPlan } from '../worker/protocol';
import { sectionHref, type SectionId } from './navigation';
import type { DatasetSplit } from './split';
import type { DatasetImage } from './stores/dataset';

/** What the settings would cost as the engine planned them (the training store keeps it for the current settings). */
export type PlanState =
  | { status: 'none'; reason: string }
  | { status: 'planning' }
  | { status: 'ready'; plan: TrainingPlan }
  | { status: 'invalid'; message: string }
  /** Even the smallest passes are over the device's limits (the message says what to do). */
  | { status: 'does-not-fit'; message: string };

/** A run another tab of this browser profile is training (one run at a time per profile). */
export interface ElsewhereRun {
  /** Unknown (null) until that tab reports its next step. */
  step: number | null;
  iterations: number | null;
  stepsPerSecond: number | null;
  secondsLeft: number | null;
}

export interface ReadinessProblem {
  /** Stable across renders: which check failed. */
  check: 'model' | 'classes' | 'empty-classes' | 'no-held-out' | 'settings' | 'memory' | 'planning' | 'elsewhere';
  text: string;
  /** Where to fix it. */
  fix: { label: string; href: string } | null;
}

export interface ReadinessInput {
  model: LoadedModel | null;
  classes: readonly ClassRecord[];
  images: readonly DatasetImage[];
  split: DatasetSplit;
  plan: PlanState;
  elsewhere: ElsewhereRun | null;
}

const fixOn = (label: string, section: SectionId) => ({ label, href: sectionHref(section) });
const quoted = (names: readonly string[]) => names.map((name) => `“${name}”`).join(', ');

export function trainingProblems({
  model,
  classes,
  images,
  split,
  plan,
  elsewhere,
}: ReadinessInput): ReadinessProblem[] {
  const problems: ReadinessProblem[] = [];
  if (elsewhere) {
    problems.push({
      check: 'elsewhere',
      text: 'Training in another tab: one run at a time in this browser.',
      fix: null,
    });
  }
  if (!model)
    problems.push({ check: 'model', text: 'No model is loaded.', fix: fixOn('Load one on the Model screen', 'model') });
  if (classes.length < 2) {
    problems.push({
      check: 'classes',
      text: `Training needs at least two classes; the dataset has ${classes.length}.`,
      fix: fixOn('Add classes on the Dataset screen', 'dataset'),
    });
  }
  const withImages = new Set(images.map((image) => image.classId));
  const empty = classes.filter((c) => !withImages.has(c.id));
  if (empty.length) {
    problems.push({
      check: 'empty-classes',
      text: `${quoted(empty.map((c) => c.name))} ${empty.length === 1 ? 'has' : 'have'} no images.`,
      fix: fixOn('Add images to them or delete them on the Dataset screen', 'dataset'),
    });
  }
  // fewShotSplit holds one image out of every class with two or more: only a single image holds none out.
  const noHeldOut = split.counts.filter((count) => count.train > 0 && count.heldOut === 0);
  if (noHeldOut.length) {
    const names = noHeldOut.map((count) => classes.find((c) => c.id === count.classId)?.name ?? '?');
    const one = names.length === 1;
    problems.push({
      check: 'no-held-out',
      text: `${quoted(names)} ${one ? 'has' : 'have'} one image, which trains: none is held out to evaluate the adapter on.`,
      fix: fixOn(`Add at least one more image to ${one ? 'it' : 'each'} on the Dataset screen`, 'dataset'),
    });
  }
  if (model && plan.status === 'invalid')
    problems.push({ check: 'settings', text: `${plan.message} Change it in the settings below.`, fix: null });
  if (model && plan.status === 'does-not-fit') problems.push({ check: 'memory', text: plan.message, fix: null });
  if (model && (plan.status === 'planning' || plan.status === 'none'))
    problems.push({ check: 'planning', text: 'Working out what these settings cost…', fix: null });
  return problems;
}
