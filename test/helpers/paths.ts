// Paths that tests resolve from the repository root (tests run from dist/test/...).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const SHARED = path.resolve(REPO_ROOT, '../shared');
export const GOLDEN = path.join(SHARED, 'golden');
export const hasGolden = existsSync(path.join(GOLDEN, 'SGR.h5'));
export const NO_SHARED = 'skipped: no ../shared/golden (the reference outputs live outside the repository)';
