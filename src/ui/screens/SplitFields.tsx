// Which images train, on the Dataset and Train screens alike: N shots per class (CLIP-LoRA), or "use my
// images": train on X% of each class and hold out the rest. The CLI's --shots and --holdout, same seed,
// same split (splitFor).

import { STARTING_HOLDOUT } from '../../common/recipe';
import { NumberField, RadioGroup } from '../components/fields';
import { useTrainingStore } from '../stores/training';

export function SplitFields({ disabled }: { disabled: boolean }) {
  const settings = useTrainingStore((s) => s.settings);
  const update = useTrainingStore((s) => s.update);
  const holdout = settings.holdout;
  return (
    <>
      <RadioGroup
        label="Training images"
        value={holdout === undefined ? 'shots' : 'holdout'}
        disabled={disabled}
        options={[
          { value: 'shots', label: 'N images per class (few-shot)' },
          { value: 'holdout', label: 'Use my images: train on X%, hold out the rest' },
        ]}
        onChange={(kind) => update({ holdout: kind === 'holdout' ? STARTING_HOLDOUT : undefined })}
      />
      <div className="field-row">
        {holdout === undefined ? (
          <NumberField
            label="Shots per class"
            integer
            min={1}
            value={settings.shots}
            disabled={disabled}
            onChange={(shots) => update({ shots })}
            help="Training images per class (CLIP-LoRA uses 1 to 16)."
          />
        ) : (
          // (100 - p) / 100 is the same number as the CLI's --holdout written in decimals (0.15 for 85%).
          <NumberField
            label="Train on (%)"
            integer
            min={1}
            max={99}
            value={Math.round(100 * (1 - holdout))}
            disabled={disabled}
            onChange={(percent) => update({ holdout: (100 - percent) / 100 })}
            help="Of each class's images; the rest are held out (at least one)."
          />
        )}
        <NumberField
          label="Seed"
          integer
          value={settings.seed}
          disabled={disabled}
          onChange={(seed) => update({ seed })}
          help="Seeds the split, the batches and the adapter’s start."
        />
      </div>
    </>
  );
}
