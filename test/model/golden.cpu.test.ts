import { goldenSuite } from './goldenSuite.js';
goldenSuite('cpu');
