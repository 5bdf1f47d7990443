// `vsl serve` as a child process for the server and page tests: started on a free port, ready once it has printed
// its address and encoded the split's captions (image queries answer 503 until then).
import assert from 'node:assert/strict';
import { request } from './httpClient.js';
import { vslStart, type VslRun } from './evalFixture.js';

export interface ServeChild {
  url: string;
  child: ReturnType<typeof vslStart>['child'];
  done: Promise<VslRun>;
}

export async function startServe(cwd: string, args: string[], logLevel = 'info'): Promise<ServeChild> {
  const { child, done } = vslStart(cwd, ['serve', '--port', '0', ...args], logLevel);
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (s: string) => {
      out += s;
      const m = /listening on (http:\/\/\S+\/)/.exec(out);
      if (m) resolve(m[1]);
    });
    void done.then((r) => reject(new Error(`vsl serve exited (${r.status}) before listening: ${r.stderr}`)));
  });
  for (let tries = 0; ; tries++) {
    const info = (await request(url, '/api/info')).json as { nCaptions: number; captionsEncoded: number };
    if (info.captionsEncoded === info.nCaptions) break;
    assert.ok(tries < 600, 'the captions were not encoded within a minute');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child, done };
}
