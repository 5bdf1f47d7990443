// The scheduler examples in examples/ (Slurm array + dependent merge, Kubernetes Indexed Job + merge Job, one
// machine with xargs -P) run as written on a tiny synthetic split: the Slurm scripts and xargs.sh by bash with
// the variables their schedulers set, the Kubernetes commands taken from the YAML (parsed with `yaml`) and run
// with the container's environment, `vsl` on PATH being this checkout. Each merged matrix must be the unsharded
// run's, bit for bit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { setLogLevel } from '../../src/util/log.js';
import { selectBackend } from '../../src/ops/backend.js';
import { runEval, type EvalJson } from '../../src/cli/eval.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { BIN, makeCheckpoint, makeEvalData, type EvalFixture } from '../helpers/evalFixture.js';

const EXAMPLES = path.join(REPO_ROOT, 'examples');
let f: EvalFixture;
let model = '';
let reference: Buffer;
let env: NodeJS.ProcessEnv;

before(async () => {
  setLogLevel('warn');
  await selectBackend('wasm');
  f = makeEvalData('examples', 12);
  model = await makeCheckpoint(f, 'M', { module: 'SAF', seed: 5 });
  await runEval({ model, split: 'test', saveSims: path.join(f.dir, 'ref.npy'), workDir: path.join(f.dir, 'ref.work') });
  reference = fs.readFileSync(path.join(f.dir, 'ref.npy'));
  // `vsl` on PATH = this checkout's bin/vsl
  const shim = path.join(f.dir, 'bin');
  fs.mkdirSync(shim);
  fs.writeFileSync(path.join(shim, 'vsl'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" --log-level warn "$@"\n`, {
    mode: 0o755,
  });
  env = {
    ...process.env,
    PATH: `${shim}:${process.env.PATH}`,
    CI: 'true',
    XDG_CACHE_HOME: path.join(f.dir, '.cache'),
    MODEL: model,
    DATA_PATH: f.dataPath,
    SPLIT: 'test',
  };
});
after(() => fs.rmSync(f.dir, { recursive: true, force: true }));

function sh(shell: string, args: string[], extra: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(shell, args, { cwd: f.dir, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    c.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, out }));
  });
}

function sameAsUnsharded(parts: string): void {
  const sims = path.join(parts, 'sims.npy');
  assert.ok(fs.existsSync(sims), `${sims} not written`);
  assert.ok(fs.readFileSync(sims).equals(reference), `${sims} differs from the unsharded run's matrix`);
}

test('Slurm: the array script per task, then the merge script; submit.sh chains them with afterok', async () => {
  const dir = path.join(EXAMPLES, 'slurm');
  const script = fs.readFileSync(path.join(dir, 'eval-shard.sbatch'), 'utf8');
  const m = /^#SBATCH --array=0-(\d+)$/m.exec(script);
  assert.ok(m, 'eval-shard.sbatch has no #SBATCH --array=0-K line');
  const count = Number(m[1]) + 1;
  const parts = path.join(f.dir, 'slurm-parts');
  const runs = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      sh('bash', [path.join(dir, 'eval-shard.sbatch')], {
        SLURM_ARRAY_TASK_ID: String(i),
        SLURM_ARRAY_TASK_COUNT: String(count),
        PARTS: parts,
      }),
    ),
  );
  for (const r of runs) assert.equal(r.code, 0, r.out);
  const merge = await sh('bash', [path.join(dir, 'merge.sbatch')], { PARTS: parts });
  assert.equal(merge.code, 0, merge.out);
  assert.match(merge.out, /^test +\|/m);
  assert.equal((JSON.parse(fs.readFileSync(path.join(parts, 'result.json'), 'utf8')) as EvalJson).nImages, 12);
  sameAsUnsharded(parts);
  const submit = fs.readFileSync(path.join(dir, 'submit.sh'), 'utf8');
  assert.match(submit, /^array=\$\(sbatch --parsable eval-shard\.sbatch\)$/m);
  assert.match(submit, /^sbatch --dependency=afterok:"\$array" merge\.sbatch$/m);
});

interface Container {
  command: string[];
  env: { name: string; value: string }[];
  volumeMounts: { name: string; mountPath: string }[];
}
interface JobDoc {
  kind: string;
  spec: {
    completionMode?: string;
    completions?: number;
    parallelism?: number;
    template: {
      spec: { containers: Container[]; volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[] };
    };
  };
}

function readJob(file: string): JobDoc {
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  assert.equal(docs.length, 1, file);
  assert.deepEqual(docs[0].errors, [], file);
  const job = docs[0].toJS() as JobDoc;
  assert.equal(job.kind, 'Job', file);
  return job;
}

/** The container's command (sh -c SCRIPT) and environment, the paths pointed at this test's files. */
function containerRun(job: JobDoc, paths: Record<string, string>): { script: string; env: NodeJS.ProcessEnv } {
  const c = job.spec.template.spec.containers[0];
  assert.deepEqual(c.command.slice(0, 2), ['sh', '-c']);
  const e: NodeJS.ProcessEnv = {};
  for (const { name, value } of c.env) if (name !== 'PATH') e[name] = paths[name] ?? value;
  // the volume holding the parts is a claim the pods share
  const partsMount = c.volumeMounts.find((v) => v.mountPath === c.env.find((x) => x.name === 'PARTS')!.value);
  assert.ok(partsMount, 'PARTS is not a mounted volume');
  const vol = job.spec.template.spec.volumes.find((v) => v.name === partsMount.name);
  assert.equal(vol?.persistentVolumeClaim?.claimName, 'vsl-parts');
  return { script: c.command[2], env: e };
}

test('Kubernetes: the Indexed Job command per completion index, then the merge Job', async () => {
  const dir = path.join(EXAMPLES, 'kubernetes');
  const shards = readJob(path.join(dir, 'eval-shards.yaml'));
  assert.equal(shards.spec.completionMode, 'Indexed');
  const n = shards.spec.completions!;
  assert.ok(Number.isInteger(n) && n >= 2, `completions: ${n}`);
  assert.equal(shards.spec.parallelism, n);
  const parts = path.join(f.dir, 'k8s-parts');
  fs.mkdirSync(parts);
  const paths = { MODEL: model, DATA_PATH: f.dataPath, SPLIT: 'test', PARTS: parts };
  const run = containerRun(shards, paths);
  assert.equal(run.env.SHARDS, String(n), 'SHARDS must equal completions');
  assert.match(run.script, /\$JOB_COMPLETION_INDEX/);
  const runs = await Promise.all(
    Array.from({ length: n }, (_, i) => sh('sh', ['-c', run.script], { ...run.env, JOB_COMPLETION_INDEX: String(i) })),
  );
  for (const r of runs) assert.equal(r.code, 0, r.out);
  const merge = containerRun(readJob(path.join(dir, 'merge-job.yaml')), paths);
  const r = await sh('sh', ['-c', merge.script], merge.env);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /merged from 4 part\(s\)/);
  sameAsUnsharded(parts);
  assert.match(
    fs.readFileSync(path.join(dir, 'run.sh'), 'utf8'),
    /kubectl wait --for=condition=complete .*job\/vsl-eval-shards/,
  );
});

test('one machine: xargs -P shards, then the merge', async () => {
  const parts = path.join(f.dir, 'local-parts');
  const r = await sh('bash', [path.join(EXAMPLES, 'local/xargs.sh')], { PARTS: parts, N: '3' });
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /merged from 3 part\(s\)/);
  sameAsUnsharded(parts);
});
