import { goldenSuite } from './goldenSuite.js';
// XNNPACK's float32 matMul rounds differently from an exact product (~1e-5 off, BACKENDS.md); the issue
// allows 10x the tolerance on wasm. The measured errors are printed as test diagnostics.
goldenSuite('wasm', 10);
