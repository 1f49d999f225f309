// Prompts: the template fills in each class name, a class's own prompt replaces it, and the class
// embeddings (the text tower on a real device) follow the prompts given.

import { describe, expect, it } from 'vitest';
import { anArticlePrompt, checkPrompts, DEFAULT_TEMPLATE, promptFor, promptsFor } from '../../src/common/prompts';
import { classEmbeddings } from '../../src/model/zero-shot';
import { useGpu } from '../helpers/gpu';
import { loadTinyModel } from '../helpers/tiny-model';

const ctx = await useGpu();
const { model } = await loadTinyModel(ctx);

describe('prompts', () => {
  it('fill the template with each class name unless the class has its own prompt', () => {
    expect(promptFor('golden_retriever')).toBe('a photo of a golden retriever.');
    expect(promptsFor(['cat', 'golden_retriever'], 'a drawing of a {}', { cat: 'a tabby cat asleep' })).toEqual([
      'a tabby cat asleep',
      'a drawing of a golden retriever',
    ]);
    expect(promptsFor(['constructor'], DEFAULT_TEMPLATE, {})).toEqual(['a photo of a constructor.']);
  });

  it('offer "an" where a class name calls for it, and nothing where the prompt reads right or has no "a {}"', () => {
    expect(anArticlePrompt('A')).toBe('a photo of an A.');
    expect(anArticlePrompt('x')).toBe('a photo of an x.');
    expect(anArticlePrompt('B')).toBeNull();
    expect(anArticlePrompt('African_elephant')).toBe('a photo of an African elephant.');
    expect(anArticlePrompt('one')).toBeNull();
    expect(anArticlePrompt('unicorn')).toBeNull();
    expect(anArticlePrompt('golden_retriever')).toBeNull();
    expect(anArticlePrompt('owl', 'A {} in the wild')).toBe('An owl in the wild');
    expect(anArticlePrompt('owl', 'the {}')).toBeNull();
    expect(anArticlePrompt('owl', 'a photo of a cat or a {}')).toBe('a photo of a cat or an owl');
  });

  it('refuse a template without {}, a prompt for a class that is not there, and an empty prompt', () => {
    expect(() => checkPrompts(['cat'], 'a photo', {})).toThrow(
      'the prompt template "a photo" has no {} for the class name',
    );
    expect(() => checkPrompts(['cat', 'dog'], DEFAULT_TEMPLATE, { cow: 'a cow' })).toThrow(
      'a prompt is given for "cow", which is not one of the classes (cat, dog)',
    );
    expect(() => checkPrompts(['cat'], DEFAULT_TEMPLATE, { cat: '  ' })).toThrow('the prompt for "cat" is empty');
    expect(() => checkPrompts(['cat'], DEFAULT_TEMPLATE, { cat: 'a cat' })).not.toThrow();
  });

  it("reach the text tower: a class given another class's prompt gets that class's embedding", async () => {
    const dim = model.config.projectionDim;
    const plain = await classEmbeddings(model, ['cat', 'dog'], ['a photo of a {}.']);
    const prompted = await classEmbeddings(model, ['cat', 'dog'], ['a photo of a {}.'], null, {
      cat: 'a photo of a dog.',
    });
    expect(Array.from(prompted.subarray(dim))).toEqual(Array.from(plain.subarray(dim)));
    expect(Array.from(prompted.subarray(0, dim))).toEqual(Array.from(plain.subarray(dim)));
    expect(Array.from(plain.subarray(0, dim))).not.toEqual(Array.from(plain.subarray(dim)));
  });
});
