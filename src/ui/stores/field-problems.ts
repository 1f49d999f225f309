// The form fields whose text is not a value they accept (out of range, not a whole number): the field
// marks itself, and the Train screen's checklist names it and keeps Start off until it is fixed. The
// settings keep their last accepted value meanwhile, so nothing downstream computes with a bad one.

import { create } from 'zustand';

export interface FieldProblemsState {
  /** By field id: the field's label and what it accepts. */
  problems: Record<string, { label: string; text: string }>;
  report(id: string, problem: { label: string; text: string } | null): void;
}

export const useFieldProblems = create<FieldProblemsState>()((set) => ({
  problems: {},
  report(id, problem) {
    set((state) => {
      if (!problem && !(id in state.problems)) return state;
      const { [id]: _, ...others } = state.problems;
      return { problems: problem ? { ...others, [id]: problem } : others };
    });
  },
}));

/** What a number field accepts, in words, or null when `value` is one of them. */
export function rangeProblem(
  value: number,
  { min, max, integer }: { min?: number; max?: number; integer?: boolean },
): string | null {
  const range =
    min !== undefined && max !== undefined
      ? `between ${min} and ${max}`
      : min !== undefined
        ? `at least ${min}`
        : max !== undefined
          ? `at most ${max}`
          : null;
  const kind = integer ? 'a whole number' : 'a number';
  const wanted = range ? `${kind} ${range}` : kind;
  const ok =
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    (min === undefined || value >= min) &&
    (max === undefined || value <= max);
  return ok ? null : `${wanted.charAt(0).toUpperCase()}${wanted.slice(1)}.`;
}
