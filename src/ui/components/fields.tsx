// Labelled form controls. Number fields keep what is typed until it is a number ("0.", "1e-"), and
// report only numbers.

import { useEffect, useId, useState, type ReactNode } from 'react';
import { rangeProblem, useFieldProblems } from '../stores/field-problems';

interface FieldProps {
  label: string;
  help?: ReactNode;
  disabled?: boolean;
}

export function NumberField(
  props: FieldProps & {
    value: number;
    onChange(value: number): void;
    min?: number;
    max?: number;
    step?: number | 'any';
    integer?: boolean;
  },
) {
  const id = useId();
  const [text, setText] = useState(String(props.value));
  // Follow changes made elsewhere (a reset to the recipe), not the echo of our own edits.
  useEffect(() => {
    setText((current) => (Number(current) === props.value ? current : String(props.value)));
  }, [props.value]);
  // Text that is not a value this field accepts is marked here and reported (Start stays off); the
  // setting keeps its last accepted value. Text not yet a number ("1e-") is still being typed.
  const typed = text.trim() === '' ? Number.NaN : Number(text);
  const problem = props.disabled ? null : rangeProblem(typed, props);
  const report = useFieldProblems((s) => s.report);
  useEffect(() => {
    report(id, problem ? { label: props.label, text: problem } : null);
  }, [id, problem, props.label, report]);
  useEffect(() => () => report(id, null), [id, report]);
  const describedBy = [problem ? `${id}-problem` : null, props.help ? `${id}-help` : null].filter(Boolean).join(' ');
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        type="number"
        inputMode={props.integer ? 'numeric' : 'decimal'}
        value={text}
        min={props.min}
        max={props.max}
        step={props.step ?? (props.integer ? 1 : 'any')}
        disabled={props.disabled}
        aria-invalid={problem ? true : undefined}
        onChange={(event) => {
          setText(event.target.value);
          const value = event.target.value.trim() === '' ? Number.NaN : Number(event.target.value);
          if (rangeProblem(value, props) === null) props.onChange(value);
        }}
        aria-describedby={describedBy || undefined}
      />
      {problem && (
        <small id={`${id}-problem`} className="invalid" data-testid="field-problem">
          {problem}
        </small>
      )}
      {props.help && (
        <small id={`${id}-help`} className="help">
          {props.help}
        </small>
      )}
    </div>
  );
}

export function SelectField<T extends string>(
  props: FieldProps & {
    value: T;
    options: readonly { value: T; label: string; disabled?: boolean }[];
    onChange(value: T): void;
  },
) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <select
        id={id}
        value={props.value}
        disabled={props.disabled}
        onChange={(event) => props.onChange(event.target.value as T)}
        aria-describedby={props.help ? `${id}-help` : undefined}
      >
        {props.options.map((option) => (
          <option key={option.value} value={option.value} disabled={option.disabled}>
            {option.label}
          </option>
        ))}
      </select>
      {props.help && (
        <small id={`${id}-help`} className="help">
          {props.help}
        </small>
      )}
    </div>
  );
}

/** A group of checkboxes choosing a subset of options. */
export function CheckboxGroup<T extends string>(
  props: FieldProps & {
    value: readonly T[];
    options: readonly { value: T; label: string }[];
    onChange(value: T[]): void;
  },
) {
  return (
    <fieldset className="field checkbox-group" disabled={props.disabled}>
      <legend>{props.label}</legend>
      <div className="checkbox-options">
        {props.options.map((option) => (
          <label key={option.value} className="checkbox">
            <input
              type="checkbox"
              checked={props.value.includes(option.value)}
              onChange={(event) =>
                props.onChange(
                  event.target.checked
                    ? props.options.map((o) => o.value).filter((v) => v === option.value || props.value.includes(v))
                    : props.value.filter((v) => v !== option.value),
                )
              }
            />
            {option.label}
          </label>
        ))}
      </div>
      {props.help && <small className="help">{props.help}</small>}
    </fieldset>
  );
}

/** Radio buttons for one of a few options. */
export function RadioGroup<T extends string>(
  props: FieldProps & {
    value: T;
    options: readonly { value: T; label: string; disabled?: boolean }[];
    onChange(value: T): void;
  },
) {
  const name = useId();
  return (
    <fieldset className="field radio-group" disabled={props.disabled}>
      <legend>{props.label}</legend>
      <div className="checkbox-options">
        {props.options.map((option) => (
          <label key={option.value} className="checkbox">
            <input
              type="radio"
              name={name}
              value={option.value}
              checked={props.value === option.value}
              onChange={() => props.onChange(option.value)}
            />
            {option.label}
          </label>
        ))}
      </div>
      {props.help && <small className="help">{props.help}</small>}
    </fieldset>
  );
}

/**
 * A text field that reports its value when committed (Enter or leaving the field), as renames want.
 * `check` refuses a name with the reason: the reason shows beside the field and the field goes back
 * to the current name, so it never shows a name that was not taken.
 */
export function InlineRename(props: {
  label: string;
  value: string;
  placeholder?: string;
  check?(value: string): string | null;
  onCommit(value: string): void;
}) {
  const [text, setText] = useState(props.value);
  const [refusal, setRefusal] = useState<string | null>(null);
  const refusalId = useId();
  useEffect(() => setText(props.value), [props.value]);
  const commit = () => {
    if (text === props.value) return;
    const problem = props.check?.(text) ?? (text.trim() ? null : '');
    setRefusal(problem || null);
    if (problem === null) props.onCommit(text);
    else setText(props.value);
  };
  return (
    <span className="inline-rename-field">
      <input
        className="inline-rename"
        aria-label={props.label}
        placeholder={props.placeholder}
        aria-invalid={refusal ? true : undefined}
        aria-describedby={refusal ? refusalId : undefined}
        value={text}
        onChange={(event) => setText(event.target.value)}
        onBlur={commit}
        onKeyDown={(event) => {
          if (event.key === 'Enter') event.currentTarget.blur();
          if (event.key === 'Escape') {
            setText(props.value);
            event.currentTarget.blur();
          }
        }}
      />
      {refusal && (
        <small id={refusalId} className="invalid" role="alert">
          {refusal}
        </small>
      )}
    </span>
  );
}
