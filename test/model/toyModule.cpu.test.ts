// The toy-module suite (toyModule.ts) on tfjs' cpu backend, one backend per test process.
import { toyModuleSuite } from './toyModule.js';
toyModuleSuite('cpu');
