// A small HTTP client for the server tests: the path goes out exactly as written (no URL normalisation, so
// "/images/../x" and "%2f" reach the server as a person could send them), and a request can be cut off mid-way.
import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** the body as JSON (undefined when it is not) */
  json: unknown;
}

export function request(base: string, rawPath: string, method = 'GET'): Promise<Reply> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        let json: unknown;
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Send a request and close the connection after `ms`, before the answer. */
export function requestAndLeave(base: string, rawPath: string, ms: number): Promise<void> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, agent: false });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.end();
    setTimeout(() => req.destroy(), ms);
  });
}
