// Class names as prompts. The page shows them on the Dataset screen, the text tower encodes them, and
// adapter files record the template and each class's own prompt, so the rule is written here once.

export const DEFAULT_TEMPLATE = 'a photo of a {}.';

/** A class's own prompt text, by class name: it replaces the template for that class. */
export type ClassPrompts = Readonly<Record<string, string>>;

/** "golden_retriever" -> "a photo of a golden retriever." */
export function promptFor(className: string, template = DEFAULT_TEMPLATE): string {
  return template.replace('{}', className.replace(/_/g, ' ').trim());
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
