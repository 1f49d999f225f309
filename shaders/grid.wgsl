// Indices of the folded grids of src/kernels/grid.ts, shared through `#include "grid.wgsl"`: a job of
// more than 65,535 workgroups folds into x*y of them. flat_index reads the including shader's
// WORKGROUP_SIZE.

// The workgroup's place in the job: one row per workgroup in the row kernels.
fn row_index(wg: vec3u, groups: vec3u) -> u32 {
  return wg.y * groups.x + wg.x;
}

// The thread's place in a 1-D job of one element per thread.
fn flat_index(wg: vec3u, groups: vec3u, local: u32) -> u32 {
  return row_index(wg, groups) * WORKGROUP_SIZE + local;
}
