// Packs a kernel's uniform parameters in WGSL struct order (every field 4 bytes: u32, i32 or f32).

export class Params {
  private readonly words: number[] = [];
  private readonly kinds: ('u' | 'i' | 'f')[] = [];

  u32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`u32 parameter out of range: ${value}`);
    return this.push(value, 'u');
  }

  i32(value: number): this {
    if (!Number.isInteger(value)) throw new RangeError(`i32 parameter not an integer: ${value}`);
    return this.push(value, 'i');
  }

  f32(value: number): this {
    return this.push(value, 'f');
  }

  /** Writes the fields at byteOffset of view; returns the number of bytes written. */
  writeTo(view: DataView, byteOffset: number): number {
    this.words.forEach((value, i) => {
      const at = byteOffset + 4 * i;
      if (this.kinds[i] === 'f') view.setFloat32(at, value, true);
      else if (this.kinds[i] === 'i') view.setInt32(at, value, true);
      else view.setUint32(at, value, true);
    });
    return this.byteLength;
  }

  get byteLength(): number {
    // Uniform structs round up to 16 bytes.
    return Math.max(16, Math.ceil((this.words.length * 4) / 16) * 16);
  }

  private push(value: number, kind: 'u' | 'i' | 'f'): this {
    this.words.push(value);
    this.kinds.push(kind);
    return this;
  }
}

export function params(): Params {
  return new Params();
}
