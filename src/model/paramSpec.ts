// One parameter or buffer of a model: its PyTorch state_dict name, shape and role (how it is initialised and
// whether it trains). params.ts lists a model's; each similarity module lists its own with the same helpers.

export type Role =
  | 'linear' // Linear weight [out, in]: Xavier-uniform
  | 'bias' // Linear bias: 0
  | 'embedding' // U(-0.1, 0.1)
  | 'gru' // GRU weights and biases: U(±1/sqrt(hidden)), PyTorch's default
  | 'bn-weight' // 1
  | 'bn-bias' // 0
  | 'bn-mean' // running mean: 0 (buffer)
  | 'bn-var' // running var: 1 (buffer)
  | 'bn-count'; // num_batches_tracked: 0 (int64 buffer)

export interface ParamSpec {
  name: string;
  shape: number[];
  role: Role;
}

/** A Linear(inp, out) under `prefix`: weight [out, inp] and bias [out]. */
export function linearSpecs(prefix: string, out: number, inp: number): ParamSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [out, inp], role: 'linear' },
    { name: `${prefix}.bias`, shape: [out], role: 'bias' },
  ];
}

/** A BatchNorm1d(n) under `prefix`: affine weight and bias, running mean and var, num_batches_tracked. */
export function batchNormSpecs(prefix: string, n: number): ParamSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [n], role: 'bn-weight' },
    { name: `${prefix}.bias`, shape: [n], role: 'bn-bias' },
    { name: `${prefix}.running_mean`, shape: [n], role: 'bn-mean' },
    { name: `${prefix}.running_var`, shape: [n], role: 'bn-var' },
    { name: `${prefix}.num_batches_tracked`, shape: [], role: 'bn-count' },
  ];
}

export const isBuffer = (r: Role) => r === 'bn-mean' || r === 'bn-var' || r === 'bn-count';
