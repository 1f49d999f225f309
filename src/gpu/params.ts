// A kernel's uniform parameters by name. The layout is the shader's `struct Params`, read from the
// WGSL (src/gpu/shaders.ts): every field 4 bytes, in declaration order. A wrapper passes every field by
// the camelCase of its WGSL name, so a renamed, missing or extra field is an error at the call, never
// a value read from the wrong place.

export type ParamType = 'u32' | 'i32' | 'f32';

export interface ParamField {
  /** The camelCase of wgslName, as wrappers pass it. */
  name: string;
  wgslName: string;
  type: ParamType;
}

/** Values of a Params struct by field name; booleans are 1 and 0. */
export type ParamValues = Readonly<Record<string, number | boolean>>;

export class ParamsLayout {
  /** Uniform structs round up to 16 bytes. */
  readonly byteLength: number;
  /** Field names, for the membership check every write makes (a dispatch's hot path). */
  private readonly declared: ReadonlySet<string>;

  constructor(
    readonly shader: string,
    readonly fields: readonly ParamField[],
  ) {
    this.byteLength = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
    this.declared = new Set(fields.map((field) => field.name));
  }

  /** Writes values in struct order at byteOffset of view, after checking every name and value. */
  write(entry: string, values: ParamValues, view: DataView, byteOffset: number): void {
    for (const name in values) {
      if (!this.declared.has(name)) {
        const unknown = Object.keys(values).filter((given) => !this.declared.has(given));
        throw new Error(
          `${this.shader}.${entry}: Params has no field ${unknown.join(', ')} (shaders/${this.shader}.wgsl declares ${[...this.declared].join(', ')})`,
        );
      }
    }
    // Checked in full before the first byte is written, so that a bad value leaves the view as it was.
    for (const { name, wgslName, type } of this.fields) {
      const given = values[name];
      if (given === undefined)
        throw new Error(`${this.shader}.${entry}: Params field ${name} (${wgslName}: ${type}) is missing`);
      const value = Number(given);
      const valid =
        type === 'f32'
          ? typeof given === 'number'
          : Number.isInteger(value) &&
            (type === 'i32' ? value >= -0x80000000 && value <= 0x7fffffff : value >= 0 && value <= 0xffffffff);
      if (!valid)
        throw new RangeError(
          `${this.shader}.${entry}: Params field ${name} must be ${type === 'f32' ? 'a number' : `a ${type}`}, got ${given}`,
        );
    }
    for (let i = 0; i < this.fields.length; i++) {
      const { name, type } = this.fields[i];
      const value = Number(values[name]);
      const at = byteOffset + 4 * i;
      if (type === 'f32') view.setFloat32(at, value, true);
      else if (type === 'i32') view.setInt32(at, value, true);
      else view.setUint32(at, value, true);
    }
  }
}
