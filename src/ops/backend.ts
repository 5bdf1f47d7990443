// Backend selection at start-up. The native TensorFlow backends are optionalDependencies: their install
// downloads libtensorflow from outside the npm registry and often fails, so they are imported lazily and
// their absence is reported, not fatal. Model code uses tf ops only, so the same code runs on CUDA.
import * as tf from '@tensorflow/tfjs';
import { log } from '../util/log.js';
import { VslError } from '../util/errors.js';
import { patchWasmKernels } from './wasmKernels.js';
import { registerGraphAttentionKernels } from './graphAttention.js';
import { guardAllocations } from './memoryGuard.js';
import { registerGemmKernels } from './gemm.js';
import { registerAdamKernel } from './adamStep.js';

const BACKENDS = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
export type BackendChoice = BackendName | 'auto';

export interface BackendInfo {
  name: BackendName;
  tfName: string; // what tf.getBackend() reports
  skipped: { name: BackendName; why: string }[];
  /** what runs the matrix products on wasm: vsl's relaxed-SIMD kernel or tfjs' XNNPACK (ops/gemm.ts) */
  products?: 'vsl-gemm' | 'xnnpack';
}

async function tryNative(pkg: string): Promise<string | null> {
  try {
    await import(pkg);
    return null;
  } catch (e) {
    return `${pkg} not installed or not loadable (${(e as Error).message.split('\n')[0]})`;
  }
}

async function tryOne(name: BackendName): Promise<string | null> {
  let tfName: string = name;
  if (name === 'tensorflow-gpu' || name === 'tensorflow') {
    const why = await tryNative(name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
    tfName = 'tensorflow';
    if (why) return why;
  } else if (name === 'wasm') {
    try {
      await import('@tensorflow/tfjs-backend-wasm');
    } catch (e) {
      return `@tensorflow/tfjs-backend-wasm not loadable (${(e as Error).message})`;
    }
  }
  // setBackend returns false (and tfjs silently stays where it was) when a backend fails to initialise.
  let ok: boolean;
  try {
    ok = await tf.setBackend(tfName);
  } catch (e) {
    return `setBackend('${tfName}') threw: ${(e as Error).message}`;
  }
  if (!ok || tf.getBackend() !== tfName) return `setBackend('${tfName}') returned false`;
  await tf.ready();
  return null;
}

// Prod mode: no debug checks, and no console advert for tfjs-node when the cpu backend runs.
tf.enableProdMode();

let active: BackendInfo | null = null;

/** Select the backend once per process: `auto` tries tensorflow-gpu, tensorflow, wasm, cpu in that order. */
export async function selectBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (active) {
    if (choice !== 'auto' && choice !== active.name) {
      throw new VslError(`backend already set to ${active.name}; cannot switch to ${choice} in one process`);
    }
    return active;
  }
  if (choice !== 'auto' && !(BACKENDS as readonly string[]).includes(choice)) {
    throw new VslError(`--backend: expected one of auto, ${BACKENDS.join(', ')}, found ${choice}`);
  }
  const order: BackendName[] = choice === 'auto' ? [...BACKENDS] : [choice];
  const skipped: { name: BackendName; why: string }[] = [];
  for (const name of order) {
    const why = await tryOne(name);
    if (why === null) {
      let products: BackendInfo['products'];
      if (name === 'wasm') {
        patchWasmKernels();
        registerGraphAttentionKernels();
        registerAdamKernel();
        products = registerGemmKernels();
        guardAllocations();
      }
      active = { name, tfName: tf.getBackend(), skipped, ...(products ? { products } : {}) };
      // one short line at a terminal; the skipped backends' reasons go to debug (and the JSON log at that level)
      log().info(`backend ${name}` + (skipped.length ? ` (skipped ${skipped.map((s) => s.name).join(', ')})` : ''));
      if (skipped.length)
        log().debug({ backend: name, skipped: skipped.map((s) => `${s.name}: ${s.why}`) }, 'skipped backends');
      return active;
    }
    skipped.push({ name, why });
  }
  throw new VslError(`no backend could start: ${skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}`);
}

export function activeBackend(): BackendInfo | null {
  return active;
}
