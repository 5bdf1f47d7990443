// `vsl serve` on the eval fixture, through its HTTP API: the top results are `vsl query`'s on the same checkpoint
// and split (both directions), the pictures served are only the mapped files inside --images (traversal in every
// spelling refused), malformed requests get 400 / 404 / 405 with a JSON error and no stack, a full queue says 503,
// clients that leave mid-query harm nothing, and SIGTERM closes the server with exit 0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readCaptions } from '../../src/data/captions.js';
import { loadVocab } from '../../src/data/vocab.js';
import { DATA_NAME, makeCheckpoint, makeEvalData, vslSync, type EvalFixture } from '../helpers/evalFixture.js';
import { request, requestAndLeave } from '../helpers/httpClient.js';
import { png } from '../helpers/png.js';
import { startServe, type ServeChild } from '../helpers/serveFixture.js';

const N = 12;
let f: EvalFixture;
let model = '';
let idx = '';
let pics = '';
let server: ServeChild;
let captions: string[] = [];

interface SearchJson {
  results: { image: number; score: number; captions: string[]; picture: string | null; groundTruth: boolean }[];
  groundTruth: { caption: number; image: number; rank: number } | null;
  unknown: string[];
}
interface ImageJson {
  image: number;
  results: { caption: number; score: number; text: string; groundTruth: boolean }[];
  firstGroundTruthRank: number;
}

before(async () => {
  f = makeEvalData('serve-api', N);
  model = await makeCheckpoint(f, 'm', { module: 'SAF', seed: 3 });
  idx = path.join(f.dir, 'idx');
  const r = vslSync(f.dir, ['index', '--model', model, '--split', 'test', '--out', idx]);
  assert.equal(r.status, 0, r.stderr);
  captions = readCaptions(path.join(f.dataPath, DATA_NAME, 'test_caps.txt'));
  // pictures: row 0 a real PNG, rows 1-4 names that must not be served, the others real
  pics = path.join(f.dir, 'pics');
  fs.mkdirSync(pics);
  fs.writeFileSync(
    path.join(f.dir, 'outside.png'),
    png(2, 2, () => [255, 0, 0]),
  );
  fs.symlinkSync(path.join(f.dir, 'outside.png'), path.join(pics, 'link.png'));
  const names = ['p0.png', '../outside.png', path.join(f.dir, 'outside.png'), 'link.png', 'missing.png'];
  for (let i = 5; i < N; i++) names.push(`sub/p${i}.jpg`);
  fs.mkdirSync(path.join(pics, 'sub'));
  for (const n of names.filter((n) => /^(p0|sub)/.test(n)))
    fs.writeFileSync(
      path.join(pics, n),
      png(4, 3, () => [0, 90, 200]),
    );
  fs.writeFileSync(path.join(f.dir, 'names.txt'), names.join('\n') + '\n');
  server = await startServe(f.dir, [
    '--index',
    idx,
    '--images',
    pics,
    '--image-names',
    path.join(f.dir, 'names.txt'),
    '--max-waiting',
    '2',
  ]);
});
after(async () => {
  if (server.child.exitCode === null) server.child.kill('SIGKILL');
  await server.done;
  fs.rmSync(f.dir, { recursive: true, force: true });
});

const get = (p: string, method = 'GET') => request(server.url, p, method);

test("the API's top results are vsl query's: free sentences, a split caption (its image's rank), an image's captions", async () => {
  for (const text of ['a dog next to a red car', captions[23], 'zorblax quux']) {
    const api = (await get(`/api/search?text=${encodeURIComponent(text)}&k=${N}`)).json as SearchJson;
    const q = vslSync(f.dir, ['query', '--json', '--model', model, '--split', 'test', '--top', String(N), text]);
    assert.equal(q.status, 0, q.stderr);
    const cli = (JSON.parse(q.stdout) as { sentences: (SearchJson & { hits: SearchJson['results'] })[] }).sentences[0];
    assert.deepEqual(
      api.results.map((h) => [h.image, h.score, h.groundTruth]),
      cli.hits.map((h) => [h.image, h.score, h.groundTruth]),
      text,
    );
    assert.deepEqual(api.groundTruth, cli.groundTruth);
    assert.deepEqual(api.results[0].captions, captions.slice(5 * api.results[0].image, 5 * api.results[0].image + 5));
  }
  const gt = ((await get(`/api/search?text=${encodeURIComponent(captions[23])}`)).json as SearchJson).groundTruth!;
  assert.deepEqual([gt.caption, gt.image], [23, 4]);
  const known = [...loadVocab(path.join(f.dataPath, `${DATA_NAME}_vocab.json`)).word2idx.keys()].find((w) =>
    /^[a-z]{3,}$/.test(w),
  )!;
  const unk = (await get(`/api/search?text=zorblax%20${known}`)).json as SearchJson;
  assert.deepEqual(unk.unknown, ['zorblax']);
  for (const image of [0, 7]) {
    const api = (await get(`/api/image/${image}?k=60`)).json as ImageJson;
    const q = vslSync(f.dir, [
      'query',
      '--json',
      '--model',
      model,
      '--split',
      'test',
      '--top',
      '60',
      '--image',
      String(image),
    ]);
    const cli = (JSON.parse(q.stdout) as { image: ImageJson & { hits: ImageJson['results'] } }).image;
    assert.equal(api.results.length, 60);
    api.results.forEach((h, k) => {
      assert.equal(h.caption, cli.hits[k].caption);
      assert.ok(Math.abs(h.score - cli.hits[k].score) < 1e-6, `image ${image}, rank ${k + 1}`);
      assert.equal(h.groundTruth, Math.floor(h.caption / 5) === image);
    });
    assert.equal(api.firstGroundTruthRank, cli.firstGroundTruthRank);
  }
});

test('pictures: only the mapped files inside --images; every traversal and bad row refused', async () => {
  const ok = await get('/images/0');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['content-type'], 'image/png');
  assert.deepEqual(ok.body, fs.readFileSync(path.join(pics, 'p0.png')));
  assert.equal((await get('/images/7')).headers['content-type'], 'image/jpeg');
  const search = (await get(`/api/search?text=dog&k=${N}`)).json as SearchJson;
  for (const h of search.results) assert.equal(h.picture, h.image === 0 || h.image >= 5 ? `/images/${h.image}` : null);
  const refused: [string, number][] = [
    ['/images/..%2f..%2fetc%2fpasswd', 400],
    ['/images/..%2F..%2Foutside.png', 400],
    ['/images/%2e%2e', 400],
    ['/images/../../etc/passwd', 404],
    ['/images/-1', 400],
    ['/images/1e3', 400],
    ['/images/01', 400],
    ['/images/0x1', 400],
    ['/images/', 400],
    ['/images/999999', 404],
    ['/images/12', 404],
    ['/images/1', 404], // ../outside.png
    ['/images/2', 404], // an absolute name
    ['/images/3', 404], // a link out of the folder
    ['/images/4', 404], // missing
    ['/images/0?x=1', 400],
  ];
  for (const [p, status] of refused) {
    const r = await get(p);
    assert.equal(r.status, status, p);
    assert.equal(typeof (r.json as { error: string }).error, 'string', p);
    assert.doesNotMatch(r.body.toString(), /\bat .*\.js:\d+|Error:/, p);
  }
});

test('malformed requests: 400 / 404 / 405, a JSON error naming what was expected, no stack', async () => {
  const long = 'a'.repeat(1001);
  const cases: [string, number, RegExp, string?][] = [
    ['/api/search?text=dog&k=0', 400, /^k: expected a whole number from 1 to 100, found "0"$/],
    ['/api/search?text=dog&k=101', 400, /^k: expected a whole number from 1 to 100/],
    ['/api/search?text=dog&k=abc', 400, /^k: expected .* found "abc"$/],
    ['/api/search?text=dog&k=', 400, /^k: expected/],
    ['/api/search?text=dog&k=5&k=6', 400, /^k: expected once/],
    ['/api/search', 400, /^text: expected a sentence/],
    ['/api/search?text=%20%20', 400, /^text: expected a sentence, found only spaces$/],
    [`/api/search?text=${long}`, 400, /^text: expected at most 1000 characters, found 1001$/],
    ['/api/search?text=dog&topk=5', 400, /^unknown parameter "topk": expected text, k$/],
    ['/api/image/abc', 400, /^image: expected a row number from 0 to 11/],
    ['/api/image/12', 404, /^image: no row 12; the split has rows 0 to 11$/],
    ['/api/image/3?k=0', 400, /^k: expected/],
    ['/nope', 404, /^not found: expected \/, \/api\/search/],
    ['/api/search/x', 404, /^not found/],
    ['/api/search?text=dog', 405, /^method POST: expected GET$/, 'POST'],
    ['/', 405, /^method DELETE: expected GET$/, 'DELETE'],
  ];
  for (const [p, status, message, method] of cases) {
    const r = await get(p, method);
    assert.equal(r.status, status, `${method ?? 'GET'} ${p}`);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.match((r.json as { error: string }).error, message, p);
    if (status === 405) assert.equal(r.headers.allow, 'GET');
  }
  const ok = await get(`/api/search?text=${'a'.repeat(1000)}&k=1`);
  assert.equal(ok.status, 200);
});

test('the page: one document, no external script or font, a content security policy for its own script', async () => {
  const r = await get('/');
  assert.equal(r.status, 200);
  const html = r.body.toString();
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
  assert.equal((html.match(/<script>/g) ?? []).length, 1);
  assert.match(String(r.headers['content-security-policy']), /default-src 'none'; script-src 'sha256-/);
});

test('a full queue answers 503; clients that leave mid-query harm nothing', async () => {
  const q = (t: string) => `/api/search?text=${encodeURIComponent(t)}&k=3`;
  // long sentences (500 words each): every query takes long enough that the 12 overlap
  const long = (i: number) => `${i} ${'a dog on '.repeat(111)}`.slice(0, 1000);
  const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => get(q(long(i)))));
  const statuses = replies.map((r) => r.status);
  assert.ok(
    statuses.every((s) => s === 200 || s === 503),
    String(statuses),
  );
  assert.ok(statuses.includes(503), `--max-waiting 2 and 12 at once: ${statuses.join()}`);
  for (const r of replies.filter((r) => r.status === 503)) assert.match((r.json as { error: string }).error, /^busy: /);
  const before = (await get(q(captions[5]))).json as SearchJson;
  // leave at once, while waiting and mid-query, for both kinds of query
  await Promise.all(
    [0, 1, 5, 20, 50].flatMap((ms) => [
      requestAndLeave(server.url, q(captions[ms]), ms),
      requestAndLeave(server.url, '/api/image/2?k=50', ms),
    ]),
  );
  const again = (await get(q(captions[5]))).json as SearchJson;
  assert.deepEqual(again.results, before.results);
  assert.equal((await get('/api/image/2?k=3')).status, 200);
  assert.equal(server.child.exitCode, null);
});

test('SIGTERM closes the server: exit 0', async () => {
  server.child.kill('SIGTERM');
  const r = await server.done;
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /SIGTERM: closing the server/);
  assert.doesNotMatch(r.stderr, /"level":50|ERROR/);
});
