// A model's parameters as host float32 arrays for the ONNX export, checked once against the model's own list
// (params.ts: every name, every shape, finite values) so that a checkpoint that cannot be exported fails here
// with the parameter's name rather than inside ONNX Runtime. Also the export-time folds, computed in float64 and
// rounded once: eval-mode BatchNorm as a scale and shift, SGR's query and key maps as one S x S matrix (as sgr.ts
// folds them), and the GRU's gates in ONNX's order.
import { BN_EPS, type ModelConfig } from '../../model/config.js';
import { paramSpecs, type ParamRegistry } from '../../model/params.js';
import { VslError } from '../../util/errors.js';
import { firstNonFinite, nonFiniteName } from '../../util/finite.js';

export interface Linear {
  w: Float32Array; // [out, in], as PyTorch stores it
  b: Float32Array; // [out]
  out: number;
  in: number;
}

const f32 = (a: Float64Array | number[]) => Float32Array.from(a);

export class HostWeights {
  private constructor(
    readonly config: ModelConfig,
    private readonly arrays: Map<string, { shape: number[]; data: Float32Array }>,
  ) {}

  /**
   * Host copies of every parameter the config names. `source` names the model in errors (a file, "the registry").
   * Throws a VslError naming the first parameter that is missing, of another shape, or not finite.
   */
  static fromRegistry(reg: ParamRegistry, config: ModelConfig = reg.config, source = 'the model'): HostWeights {
    const fail = (name: string, why: string) =>
      new VslError(`${source}: cannot export to ONNX: parameter ${name}: ${why}`);
    const arrays = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const spec of paramSpecs(config)) {
      if (spec.role === 'bn-count') continue; // not used in eval mode
      if (!reg.has(spec.name)) throw fail(spec.name, 'missing');
      const v = reg.get(spec.name);
      const same = v.shape.length === spec.shape.length && v.shape.every((d, i) => d === spec.shape[i]);
      if (!same) throw fail(spec.name, `expected shape [${spec.shape.join(',')}], found [${v.shape.join(',')}]`);
      const data = Float32Array.from(v.dataSync() as Float32Array);
      const bad = firstNonFinite(data);
      if (bad >= 0) throw fail(spec.name, `${nonFiniteName(data[bad])} at index ${bad}`);
      if (spec.role === 'bn-var') {
        const neg = data.findIndex((x) => !(x + BN_EPS > 0));
        if (neg >= 0) throw fail(spec.name, `running variance ${data[neg]} at index ${neg} (must be > -${BN_EPS})`);
      }
      arrays.set(spec.name, { shape: spec.shape, data });
    }
    return new HostWeights(config, arrays);
  }

  get(name: string): Float32Array {
    const a = this.arrays.get(name);
    if (!a) throw new Error(`no parameter ${name} in this model`); // a bug in the graph code, not in the file
    return a.data;
  }

  linear(prefix: string): Linear {
    const a = this.arrays.get(`${prefix}.weight`);
    if (!a) throw new Error(`no parameter ${prefix}.weight in this model`);
    return { w: a.data, b: this.get(`${prefix}.bias`), out: a.shape[0], in: a.shape[1] };
  }

  /** Eval-mode BatchNorm `prefix` as y = a ⊙ x + c: a = γ / sqrt(running_var + eps), c = β - running_mean ⊙ a. */
  bnScaleShift(prefix: string): { a: Float32Array; c: Float32Array } {
    const g = this.get(`${prefix}.weight`);
    const beta = this.get(`${prefix}.bias`);
    const rm = this.get(`${prefix}.running_mean`);
    const rv = this.get(`${prefix}.running_var`);
    const a = new Float64Array(g.length);
    const c = new Float64Array(g.length);
    for (let i = 0; i < g.length; i++) {
      a[i] = g[i] / Math.sqrt(rv[i] + BN_EPS);
      c[i] = beta[i] - rm[i] * a[i];
    }
    return { a: f32(a), c: f32(c) };
  }

  /**
   * The Linear `prefix` followed by a per-output BatchNorm `bn` (eval mode) as one Linear: rows of W scaled by a,
   * bias a ⊙ b + c.
   */
  linearWithBatchNorm(prefix: string, bn: string): Linear {
    const l = this.linear(prefix);
    const { a, c } = this.bnScaleShift(bn);
    const scale = (o: number) => (a.length === 1 ? a[0] : a[o]);
    const shift = (o: number) => (c.length === 1 ? c[0] : c[o]);
    const w = new Float32Array(l.w.length);
    const b = new Float32Array(l.out);
    for (let o = 0; o < l.out; o++) {
      const s = scale(o);
      for (let i = 0; i < l.in; i++) w[o * l.in + i] = s * l.w[o * l.in + i];
      b[o] = s * l.b[o] + shift(o);
    }
    return { ...l, w, b };
  }

  /**
   * SGR step s's folded query-key map: QK = Wqᵀ Wk (S x S, applied as x QK) and qb = bq Wk, so that
   * q kᵀ = (x QK + qb) xᵀ + terms constant along each softmax row (sgr.ts).
   */
  queryKey(s: number): { qk: Float32Array; qb: Float32Array; S: number } {
    const q = this.linear(`sim_enc.SGR_module.${s}.graph_query_w`);
    const k = this.linear(`sim_enc.SGR_module.${s}.graph_key_w`);
    const S = q.in;
    const qk = new Float64Array(S * S);
    const qb = new Float64Array(S);
    for (let o = 0; o < q.out; o++) {
      const bo = q.b[o];
      for (let a = 0; a < S; a++) {
        const wqa = q.w[o * S + a];
        const row = a * S;
        for (let c = 0; c < S; c++) qk[row + c] += wqa * k.w[o * S + c];
      }
      for (let c = 0; c < S; c++) qb[c] += bo * k.w[o * S + c];
    }
    return { qk: f32(qk), qb: f32(qb), S };
  }

  /**
   * The GRU direction `suffix` ('' or '_reverse') in ONNX's layout: W (3H, in), R (3H, H) with the gates as
   * z, r, h (PyTorch stacks r, z, n), B (6H) = [Wb_z, Wb_r, Wb_h, Rb_z, Rb_r, Rb_h].
   */
  gruDirection(suffix: string): { W: Float32Array; R: Float32Array; B: Float32Array; H: number } {
    const p = (k: string) => this.get(`txt_enc.cap_rnn.${k}_l0${suffix}`);
    const H = this.config.embedSize;
    const order = [1, 0, 2]; // ONNX gate g is PyTorch gate order[g]
    const gates = (src: Float32Array, width: number) => {
      const out = new Float32Array(src.length);
      order.forEach((pg, g) => out.set(src.subarray(pg * H * width, (pg + 1) * H * width), g * H * width));
      return out;
    };
    const B = new Float32Array(6 * H);
    B.set(gates(p('bias_ih'), 1), 0);
    B.set(gates(p('bias_hh'), 1), 3 * H);
    return { W: gates(p('weight_ih'), this.config.wordDim), R: gates(p('weight_hh'), H), B, H };
  }
}
