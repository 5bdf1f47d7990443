// The parameter registry: every parameter and buffer of a model under its PyTorch state_dict name
// (`img_enc.fc.weight`, `sim_enc.SGR_module.0.graph_query_w.weight`, ...), with PyTorch's shapes
// (Linear weights [out, in]). Import, export, the optimizer and the tests all speak these names.
import * as tf from '@tensorflow/tfjs';
import { REGIONS, type ModelConfig } from './config.js';
import { batchNormSpecs, isBuffer, linearSpecs, type ParamSpec } from './paramSpec.js';
import { moduleOf } from './modules.js';
import { Rng } from '../util/rng.js';
import { VslError } from '../util/errors.js';

/** The state_dict of a model in PyTorch's order: img_enc, txt_enc, sim_enc. */
export function paramSpecs(c: ModelConfig): ParamSpec[] {
  const D = c.embedSize;
  const S = c.simDim;
  const H3 = 3 * D;
  const specs: ParamSpec[] = [];
  const lin = (prefix: string, out: number, inp: number) => specs.push(...linearSpecs(prefix, out, inp));
  const bn = (prefix: string, n: number) => specs.push(...batchNormSpecs(prefix, n));
  if (c.numLayers !== 1)
    throw new VslError(`num_layers: expected 1 (the only depth of the reference models), found ${c.numLayers}`);
  lin('img_enc.fc', D, c.imgDim);
  specs.push({ name: 'txt_enc.embed.weight', shape: [c.vocabSize, c.wordDim], role: 'embedding' });
  for (const suffix of c.biGru ? ['', '_reverse'] : ['']) {
    specs.push({ name: `txt_enc.cap_rnn.weight_ih_l0${suffix}`, shape: [H3, c.wordDim], role: 'gru' });
    specs.push({ name: `txt_enc.cap_rnn.weight_hh_l0${suffix}`, shape: [H3, D], role: 'gru' });
    specs.push({ name: `txt_enc.cap_rnn.bias_ih_l0${suffix}`, shape: [H3], role: 'gru' });
    specs.push({ name: `txt_enc.cap_rnn.bias_hh_l0${suffix}`, shape: [H3], role: 'gru' });
  }
  lin('sim_enc.v_global_w.embedding_local.0', D, D);
  bn('sim_enc.v_global_w.embedding_local.1', REGIONS);
  lin('sim_enc.v_global_w.embedding_global.0', D, D);
  bn('sim_enc.v_global_w.embedding_global.1', D);
  lin('sim_enc.v_global_w.embedding_common.0', 1, D);
  lin('sim_enc.t_global_w.embedding_local.0', D, D);
  lin('sim_enc.t_global_w.embedding_global.0', D, D);
  lin('sim_enc.t_global_w.embedding_common.0', 1, D);
  lin('sim_enc.sim_tranloc_w', S, D);
  lin('sim_enc.sim_tranglo_w', S, D);
  lin('sim_enc.sim_eval_w', 1, S);
  specs.push(...moduleOf(c).params(c));
  return specs;
}

export interface ParamEntry {
  spec: ParamSpec;
  trainable: boolean;
  /** float32 value (parameters and running statistics); for bn-count a 0-d variable holding the count. */
  variable: tf.Variable;
}

/** Host copy of one array, as read from or written to files. */
export interface HostArray {
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array;
}

export class ParamRegistry {
  readonly entries = new Map<string, ParamEntry>();
  constructor(readonly config: ModelConfig) {}

  get(name: string): tf.Variable {
    const e = this.entries.get(name);
    if (!e) throw new Error(`no parameter named ${name}`);
    return e.variable;
  }
  has(name: string): boolean {
    return this.entries.has(name);
  }
  /** Trainable parameters in the reference optimizer's order (txt_enc, img_enc, sim_enc). */
  trainable(): ParamEntry[] {
    const all = [...this.entries.values()].filter((e) => e.trainable);
    const rank = (n: string) => (n.startsWith('txt_enc.') ? 0 : n.startsWith('img_enc.') ? 1 : 2);
    return all.sort((a, b) => rank(a.spec.name) - rank(b.spec.name));
  }
  names(): string[] {
    return [...this.entries.keys()];
  }
  count(which: 'all' | 'trainable' = 'trainable'): number {
    let n = 0;
    for (const e of this.entries.values()) {
      if (which === 'trainable' && !e.trainable) continue;
      if (e.spec.role === 'bn-count') continue;
      n += e.spec.shape.reduce((a, b) => a * b, 1);
    }
    return n;
  }

  /** A registry initialised as the reference does, from a seeded generator. */
  static init(config: ModelConfig, seed: number): ParamRegistry {
    const reg = new ParamRegistry(config);
    const rng = new Rng(seed);
    for (const spec of paramSpecs(config)) {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      switch (spec.role) {
        case 'linear': {
          const [out, inp] = spec.shape;
          const r = Math.sqrt(6) / Math.sqrt(inp + out);
          rng.fillUniform(data, -r, r);
          break;
        }
        case 'embedding':
          rng.fillUniform(data, -0.1, 0.1);
          break;
        case 'gru': {
          const r = 1 / Math.sqrt(config.embedSize);
          rng.fillUniform(data, -r, r);
          break;
        }
        case 'bn-weight':
        case 'bn-var':
          data.fill(1);
          break;
        default:
          break; // biases, running means and counts start at 0
      }
      reg.add(spec, data);
    }
    return reg;
  }

  private add(spec: ParamSpec, data: Float32Array): void {
    const trainable = !isBuffer(spec.role);
    const name = spec.name;
    const variable = tf.variable(tf.tensor(data, spec.shape, 'float32'), trainable);
    this.entries.set(name, { spec, trainable, variable });
  }

  /**
   * A registry filled from named host arrays (an HDF5 `weights/` group, a converted PyTorch state_dict).
   * Every expected key must be present with its shape; extra keys are an error too (a model of another kind).
   */
  static fromArrays(config: ModelConfig, arrays: Map<string, HostArray>, source: string): ParamRegistry {
    const specs = paramSpecs(config);
    const expected = new Set(specs.map((s) => s.name));
    const missing = specs.map((s) => s.name).filter((n) => !arrays.has(n));
    const unexpected = [...arrays.keys()].filter((n) => !expected.has(n));
    if (missing.length || unexpected.length) {
      throw new VslError(
        `${source}: the weights do not fit a ${config.module} model` +
          (missing.length ? `; missing keys: ${missing.join(', ')}` : '') +
          (unexpected.length ? `; unexpected keys: ${unexpected.join(', ')}` : ''),
      );
    }
    const reg = new ParamRegistry(config);
    for (const spec of specs) {
      const a = arrays.get(spec.name)!;
      const n = spec.shape.reduce((x, y) => x * y, 1);
      const same = a.shape.length === spec.shape.length && a.shape.every((d, i) => d === spec.shape[i]);
      if (!same) {
        throw new VslError(
          `${source}: ${spec.name}: expected shape [${spec.shape.join(',')}], found [${a.shape.join(',')}]`,
        );
      }
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = Number(a.data[i]);
      reg.add(spec, data);
    }
    return reg;
  }

  /** Host copies of every entry (num_batches_tracked as int64), for checkpoints and tests. */
  async toArrays(): Promise<Map<string, HostArray>> {
    const out = new Map<string, HostArray>();
    for (const [name, e] of this.entries) {
      const v = (await e.variable.data()) as Float32Array;
      if (e.spec.role === 'bn-count') out.set(name, { shape: [], data: BigInt64Array.of(BigInt(Math.round(v[0]))) });
      else out.set(name, { shape: [...e.spec.shape], data: Float32Array.from(v) });
    }
    return out;
  }

  dispose(): void {
    for (const e of this.entries.values()) e.variable.dispose();
    this.entries.clear();
  }
}
