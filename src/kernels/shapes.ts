// Shape checks shared by the kernel wrappers. Every failure is a RangeError that reads
// `<op>: <tensor> has shape <actual>, expected <what>`.

import { shapeString, type Tensor } from '../gpu/tensor';

/** A tensor as an error names it: by its label, or as `role "label"` when passed as [role, tensor]. */
export type Checked = Tensor | readonly [role: string, tensor: Tensor];

function unpack(checked: Checked): [name: string, tensor: Tensor] {
  if (!Array.isArray(checked)) return [(checked as Tensor).label, checked as Tensor];
  const [role, tensor] = checked as readonly [string, Tensor];
  return [`${role} "${tensor.label}"`, tensor];
}

/** `<op>: <tensor> has shape <actual>, expected <expected>`, for the checks a kernel makes itself. */
export function shapeError(op: string, checked: Checked, expected: string): RangeError {
  const [name, tensor] = unpack(checked);
  return new RangeError(`${op}: ${name} has shape ${shapeString(tensor.shape)}, expected ${expected}`);
}

/** Throws unless the tensor has exactly this shape. */
export function expectShape(op: string, checked: Checked, shape: readonly number[]): void {
  const tensor = unpack(checked)[1];
  if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
    throw shapeError(op, checked, shapeString(shape));
  }
}

/**
 * Throws unless the tensor holds `expected` elements in any shape (tensors are flat, so [B * N, D]
 * serves as [B, N, D]). `expected` is a count or a shape whose product is the count; `note` says
 * what a count is ('one per row', 'as x') or names a shape's dimensions ('[batch, m, k]').
 */
export function expectElements(
  op: string,
  checked: Checked,
  expected: number | readonly number[],
  note?: string,
): void {
  const [name, tensor] = unpack(checked);
  const count = typeof expected === 'number' ? expected : expected.reduce((a, b) => a * b, 1);
  if (tensor.size === count) return;
  let want: string;
  if (typeof expected === 'number') {
    want = `${count} elements${note ? ` (${note})` : ''}`;
  } else {
    want = `${note ? `${note} = ` : ''}${shapeString(expected)}${expected.length > 1 ? ` (${count} elements)` : ''}`;
  }
  const has = tensor.shape.length > 1 ? ` (${tensor.size} elements)` : '';
  throw new RangeError(`${op}: ${name} has shape ${shapeString(tensor.shape)}${has}, expected ${want}`);
}

/** The common element count of tensors that must all match the first; names the first one that differs. */
export function sameSize(op: string, first: Tensor, ...others: Tensor[]): number {
  for (const t of others) expectElements(op, t, first.size, `as ${first.label}`);
  return first.size;
}

/** The shape of a tensor that must have one dimension per name, e.g. ['b', 'd_in']; the names describe it if not. */
export function dimensionsOf(op: string, checked: Checked, names: readonly string[]): readonly number[] {
  const tensor = unpack(checked)[1];
  if (tensor.shape.length !== names.length) throw shapeError(op, checked, `[${names.join(', ')}]`);
  return tensor.shape;
}

/** Throws unless every size is a positive integer (the sizes an op is told, not read from tensors). */
export function expectPositiveIntegers(op: string, sizes: Record<string, number>): void {
  for (const [name, value] of Object.entries(sizes)) {
    if (!Number.isInteger(value) || value < 1)
      throw new RangeError(`${op}: ${name} must be a positive integer, got ${value}`);
  }
}
