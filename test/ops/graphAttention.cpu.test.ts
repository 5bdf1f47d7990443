// The tf-ops path of the graph attention (the native and cpu backends), by the same checks as on wasm.
process.env.VSL_TEST_BACKEND = 'cpu';
await import('./graphAttention.test.js');
