// The folder rules of src/ (docs/architecture.md draws them): each folder may import only the folders listed for
// it, so imports run one way, data -> model -> loss -> runtime -> train / eval, a thin CLI on top; ops/ sits
// below the model (what vsl adds to tf's ops), runtime/ above it (how a step or a score block runs). No cycles.
/** folder -> the src/ folders it may import (besides itself) */
const ALLOWED = {
  util: [],
  io: ['util'],
  data: ['io', 'util'],
  ops: ['util'],
  model: ['ops', 'util'],
  loss: ['ops', 'util'],
  runtime: ['model', 'ops', 'util'],
  eval: ['runtime', 'model', 'ops', 'data', 'io', 'util'],
  query: ['eval', 'runtime', 'model', 'ops', 'data', 'io', 'util'],
  serve: ['query', 'eval', 'runtime', 'model', 'ops', 'data', 'io', 'util'],
  report: ['eval', 'data', 'io', 'util', 'model'],
  // train refreshes the run report at each validation
  train: ['report', 'eval', 'runtime', 'loss', 'model', 'ops', 'data', 'io', 'util'],
  bench: ['train', 'runtime', 'model', 'ops', 'data', 'util'],
  cli: ['train', 'eval', 'query', 'serve', 'report', 'runtime', 'model', 'ops', 'data', 'io', 'util', 'bench'],
};
const FOLDERS = Object.keys(ALLOWED);

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'an import cycle', from: {}, to: { circular: true } },
    {
      name: 'src-not-test',
      severity: 'error',
      comment: 'src/ must not import tests or scripts',
      from: { path: '^src/' },
      to: { path: '^(test|scripts)/' },
    },
    ...FOLDERS.map((f) => ({
      name: `layers-${f}`,
      severity: 'error',
      comment: `src/${f}/ may import only ${ALLOWED[f].length ? ALLOWED[f].join(', ') : 'no other folder'} of src/`,
      from: { path: `^src/${f}/` },
      to: { path: `^src/(?!(?:${[f, ...ALLOWED[f]].join('|')})/)` },
    })),
    {
      name: 'known-folders',
      severity: 'error',
      comment: 'every src/ folder has its line in ALLOWED above',
      from: { path: `^src/(?!(?:${FOLDERS.join('|')})/)` },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    // type-only imports count too: a cycle of types is still a knot for the reader
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
