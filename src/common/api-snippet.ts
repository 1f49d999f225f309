// The code a person pastes to use an adapter from the studio's library in their own page or Node program.

export interface SnippetSubject {
  /** The adapter's name in the library. */
  name: string;
  /** The base model's id, as loaded in the studio. */
  baseModel: string;
  /** The file name the adapter downloads as. */
  fileName: string;
}

/** JavaScript for a web page on this site (the studio's storage) and for Node (the downloaded file). */
export function classifierSnippets({ name, baseModel, fileName }: SnippetSubject): { browser: string; node: string } {
  const js = (value: string) => JSON.stringify(value);
  return {
    browser: [
      "import { loadClassifier } from 'octoclip';",
      '',
      "// The model and the adapter as this site's studio stored them; or pass a Hub id and a File or Blob.",
      `const classifier = await loadClassifier({ model: { cached: ${js(baseModel)} }, adapter: { library: ${js(name)} } });`,
      'const probabilities = await classifier.classify(imageFileOrBitmap); // [{ className, probability }], most probable first',
    ].join('\n'),
    node: [
      "import { loadClassifier } from 'octoclip';",
      '',
      `const classifier = await loadClassifier({ model: ${js(baseModel)}, adapter: ${js(fileName)} });`,
      "console.log(await classifier.classify('photo.jpg'));",
      'classifier.dispose();',
    ].join('\n'),
  };
}
