// The order of class folders and their files, shared by the studio (dropped folders) and the CLI (a
// directory), so that one folder gives the same class labels in both.

/** Code-point order, as Python's sorted(); localeCompare would depend on the machine's locale. */
export function compareCodePoints(x: string, y: string): number {
  const a = [...x];
  const b = [...y];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const difference = a[i].codePointAt(0)! - b[i].codePointAt(0)!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}
