// How dropped or picked folders become classes (src/ui/dropped-files.ts).

import { describe, expect, it } from 'vitest';
import { groupIntoClasses, type PickedFile } from '../../src/ui/dropped-files';

function picked(path: string): PickedFile {
  const parts = path.split('/');
  return { file: new File(['x'], parts.at(-1)!), folders: parts.slice(0, -1) };
}

function summary(paths: string[]) {
  const { classes, rejected } = groupIntoClasses(paths.map(picked));
  return {
    classes: classes.map((c) => [c.className, c.files.map((f) => f.name)]),
    rejected: rejected.map((r) => r.name),
  };
}

describe('groupIntoClasses', () => {
  it('makes one class per sub-folder of a dropped folder, images below it included', () => {
    expect(summary(['pets/dog/b.png', 'pets/cat/x.jpg', 'pets/dog/more/a.png', 'pets/cat/y.jpg'])).toEqual({
      classes: [
        ['cat', ['x.jpg', 'y.jpg']],
        ['dog', ['b.png', 'a.png']], // by path below the class folder: "b.png" < "more/a.png"
      ],
      rejected: [],
    });
  });

  it('takes a folder of images alone as one class, and several such folders as several', () => {
    expect(summary(['cat/1.png', 'dog/2.png', 'cat/0.png']).classes).toEqual([
      ['cat', ['0.png', '1.png']],
      ['dog', ['2.png']],
    ]);
  });

  it('orders classes by code point, as the CLI and Python do', () => {
    expect(summary(['d/b/1.png', 'd/B/1.png', 'd/a/1.png', 'd/é/1.png']).classes.map(([name]) => name)).toEqual([
      'B',
      'a',
      'b',
      'é',
    ]);
  });

  it('sets aside loose files and files beside class folders, with the reason, and ignores hidden files', () => {
    const { classes, rejected } = groupIntoClasses(
      ['loose.png', 'pets/readme.txt', 'pets/cat/1.png', 'pets/cat/.DS_Store'].map(picked),
    );
    expect(classes.map((c) => [c.className, c.files.map((f) => f.name)])).toEqual([['cat', ['1.png']]]);
    expect(rejected.map((r) => r.name)).toEqual(['loose.png', 'pets/readme.txt']);
    expect(rejected[0].reason).toMatch(/^not inside a class folder/);
  });
});
