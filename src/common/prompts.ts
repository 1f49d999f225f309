// Class names as prompts. The page shows them on the Dataset screen, the text tower encodes them, and
// adapter files record the template, so the rule is written here once.

export const DEFAULT_TEMPLATE = 'a photo of a {}.';

/** "golden_retriever" -> "a photo of a golden retriever." */
export function promptFor(className: string, template = DEFAULT_TEMPLATE): string {
  return template.replace('{}', className.replace(/_/g, ' ').trim());
}
