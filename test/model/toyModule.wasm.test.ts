// The toy-module suite (toyModule.ts) on the wasm backend, one backend per test process.
import { toyModuleSuite } from './toyModule.js';
toyModuleSuite('wasm');
