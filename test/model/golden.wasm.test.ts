import { goldenSuite } from './goldenSuite.js';
goldenSuite('wasm');
