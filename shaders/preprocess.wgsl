// Image preprocessing: crop a box of an RGBA8 image, resample it to size x size with PIL's antialiased
// bicubic filter, optionally flip it horizontally, scale to [0, 1], normalise, and write channels first.

struct Params {
  image_width: u32,
  image_height: u32,
  size: u32,
  out_offset: u32,  // first element of this image's [3, size, size] slot in the batch tensor
  flip: u32,        // 1: mirror the output horizontally
  box_x: f32,
  box_y: f32,
  box_width: f32,
  box_height: f32,
  mean_r: f32,
  mean_g: f32,
  mean_b: f32,
  std_r: f32,
  std_g: f32,
  std_b: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> image: array<u32>;  // one pixel per u32: R, G, B, A bytes, little-endian
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WORKGROUP_SIZE = 256u;
const BICUBIC_A = -0.5;
const BICUBIC_SUPPORT = 2.0;

// #include "grid.wgsl"

// PIL's bicubic kernel (Keys, a = -0.5), zero from |x| = 2 on.
fn bicubic(distance: f32) -> f32 {
  let x = abs(distance);
  if (x < 1.0) { return ((BICUBIC_A + 2.0) * x - (BICUBIC_A + 3.0)) * x * x + 1.0; }
  if (x < BICUBIC_SUPPORT) { return (((x - 5.0) * x + 8.0) * x - 4.0) * BICUBIC_A; }
  return 0.0;
}

// The source pixels [first, end) along one axis that feed one output sample, as PIL's precompute_coeffs
// finds them: the sample sits at `center` in source coordinates, the filter is stretched by the scale
// factor when downscaling (antialiasing), and taps outside the image are dropped.
struct Taps {
  first: i32,
  end: i32,
  center: f32,
  stretch: f32,
}

fn taps(box_start: f32, box_extent: f32, output_index: u32, source_size: u32) -> Taps {
  let scale = box_extent / f32(p.size);
  let stretch = max(scale, 1.0);
  let support = BICUBIC_SUPPORT * stretch;
  let center = box_start + (f32(output_index) + 0.5) * scale;
  let first = max(i32(floor(center - support + 0.5)), 0);
  let end = min(i32(floor(center + support + 0.5)), i32(source_size));
  return Taps(first, end, center, stretch);
}

// Unnormalised weight of source pixel `index`, whose centre is at index + 0.5.
fn tap_weight(t: Taps, index: i32) -> f32 {
  return bicubic((f32(index) + 0.5 - t.center) / t.stretch);
}

fn rgb(x: i32, y: i32) -> vec3f {
  return unpack4x8unorm(image[u32(y) * p.image_width + u32(x)]).rgb;
}

// One thread per output pixel computes all three channels. The 2-D filter is the product of the two
// 1-D filters, each normalised to sum 1 as in PIL; it runs in one pass in f32 where PIL runs two passes
// with a round to uint8 in between. The result is clamped to [0, 1] as PIL's uint8 output is.
@compute @workgroup_size(WORKGROUP_SIZE)
fn preprocess(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
              @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  let plane = p.size * p.size;
  if (i >= plane) { return; }
  let out_y = i / p.size;
  let out_x = i % p.size;
  let sample_x = select(out_x, p.size - 1u - out_x, p.flip == 1u);
  let columns = taps(p.box_x, p.box_width, sample_x, p.image_width);
  let rows = taps(p.box_y, p.box_height, out_y, p.image_height);

  var column_weight_sum = 0.0;
  for (var x = columns.first; x < columns.end; x++) {
    column_weight_sum += tap_weight(columns, x);
  }
  var row_weight_sum = 0.0;
  var sum = vec3f(0.0);
  for (var y = rows.first; y < rows.end; y++) {
    let row_weight = tap_weight(rows, y);
    row_weight_sum += row_weight;
    var row_sum = vec3f(0.0);
    for (var x = columns.first; x < columns.end; x++) {
      row_sum += tap_weight(columns, x) * rgb(x, y);
    }
    sum += row_weight * row_sum;
  }
  let value = clamp(sum / (column_weight_sum * row_weight_sum), vec3f(0.0), vec3f(1.0));
  let normalised = (value - vec3f(p.mean_r, p.mean_g, p.mean_b)) / vec3f(p.std_r, p.std_g, p.std_b);
  out[p.out_offset + i] = normalised.r;
  out[p.out_offset + plane + i] = normalised.g;
  out[p.out_offset + 2u * plane + i] = normalised.b;
}
