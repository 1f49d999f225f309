// Workgroup grids. A 1-D job over `count` items folds into x*y workgroups so that it stays under the
// 65,535-per-dimension limit; WGSL recovers the flat index as
// (workgroup_id.y * num_workgroups.x + workgroup_id.x) * WORKGROUP_SIZE + local_invocation_index.

const MAX_PER_DIMENSION = 65535;

export function grid1d(count: number, workgroupSize: number): [number, number] {
  const groups = Math.ceil(count / workgroupSize);
  if (groups <= MAX_PER_DIMENSION) return [groups, 1];
  const y = Math.ceil(groups / MAX_PER_DIMENSION);
  return [Math.ceil(groups / y), y];
}
