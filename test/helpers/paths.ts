// Paths that tests resolve from the repository root (tests run from dist/test/...).
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = path.join(REPO_ROOT, 'test/fixtures');
/** The reference's outputs (test/fixtures/README.md): SGR.h5, SAF.h5, vocab.json and their README. */
export const GOLDEN = path.join(FIXTURES, 'golden');
/** SCAN's vocabularies (coco_precomp_vocab.json, f30k_precomp_vocab.json). */
export const VOCAB = path.join(FIXTURES, 'vocab');
