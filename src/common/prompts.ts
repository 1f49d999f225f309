// Class names as prompts. The page shows them on the Dataset screen, the text tower encodes them, and
// adapter files record the template and each class's own prompt, so the rule is written here once.

export const DEFAULT_TEMPLATE = 'a photo of a {}.';

/** A class's own prompt text, by class name: it replaces the template for that class. */
export type ClassPrompts = Readonly<Record<string, string>>;

/** "golden_retriever" -> "a photo of a golden retriever." */
export function promptFor(className: string, template = DEFAULT_TEMPLATE): string {
  return template.replace('{}', spokenName(className));
}

/** A class name as the prompt says it: underscores read as spaces. */
function spokenName(className: string): string {
  return className.replace(/_/g, ' ').trim();
}

/** Letters whose spoken name starts with a vowel sound: "an A", "an F", "an X". */
const AN_LETTERS = new Set('AEFHILMNORSX');
/** Word starts that take "a" although they begin with a vowel letter: "a one", "a European". */
const A_BEFORE_VOWEL = /^(one|once|eu|ewe)/i;
/** The article "a" right before the class name in a template: "a photo of a {}.", "A {} in the wild". */
const A_BEFORE_NAME = /(^|\s)(a) \{\}/i;

/**
 * The template's prompt for this class with "an" for "a" where the name calls for it ("a photo of an A."),
 * or null when it reads correctly as it is or the template has no "a {}". CLIP reads prompts as written and
 * the CLIP-LoRA template is "a photo of a {}." for every class, so this is offered to the user as the class's
 * own prompt, never applied silently; the rule is a guide (English spelling does not settle "a" or "an").
 */
export function anArticlePrompt(className: string, template = DEFAULT_TEMPLATE): string | null {
  if (!A_BEFORE_NAME.test(template)) return null;
  const name = spokenName(className);
  const single = /^[A-Za-z]$/.test(name);
  const needsAn = single ? AN_LETTERS.has(name.toUpperCase()) : /^[aeio]/i.test(name) && !A_BEFORE_VOWEL.test(name);
  return needsAn ? template.replace(A_BEFORE_NAME, (_, space: string, a: string) => `${space}${a}n ${name}`) : null;
}

/** Each class's prompt, by label: its own text when it has one, else the template filled with its name. */
export function promptsFor(
  classNames: readonly string[],
  template = DEFAULT_TEMPLATE,
  classPrompts: ClassPrompts = {},
): string[] {
  return classNames.map((name) => (Object.hasOwn(classPrompts, name) ? classPrompts[name] : promptFor(name, template)));
}

/** Throws a RangeError, worded for the user, when a template or a class's prompt cannot be used for these classes. */
export function checkPrompts(classNames: readonly string[], template: string, classPrompts: ClassPrompts): void {
  if (!template.includes('{}')) throw new RangeError(`the prompt template "${template}" has no {} for the class name`);
  for (const [name, prompt] of Object.entries(classPrompts)) {
    if (!classNames.includes(name))
      throw new RangeError(
        `a prompt is given for "${name}", which is not one of the classes (${classNames.join(', ')})`,
      );
    if (typeof prompt !== 'string' || !prompt.trim()) throw new RangeError(`the prompt for "${name}" is empty`);
  }
}
