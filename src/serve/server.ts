// The HTTP side of `vsl serve`, on Node's own http module (four routes and one page need no framework): routing,
// methods (GET only: 405 otherwise), JSON errors without stacks, the picture files, a content security policy
// for the page, a client that leaves mid-query (its query is dropped from the queue, or finishes unheard), and a
// clean close. Nothing here scores: api.ts does, through the queue.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { log } from '../util/log.js';
import { VslError } from '../util/errors.js';
import { HttpError, imageCaptions, info, parseRow, search, type ApiContext } from './api.js';
import { pageHtml } from './page.js';
import { QueueAborted, QueueFull } from './queue.js';

export interface ServeOptions {
  host: string;
  port: number;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:8080/ */
  url: string;
  /** Stop accepting, turn away the waiting queries, let the running one answer (5 s at most), close sockets. */
  close(): Promise<void>;
}

const COMMON_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

function send(res: http.ServerResponse, status: number, body: string, headers: Record<string, string>): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { ...COMMON_HEADERS, 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) {
  send(res, status, JSON.stringify(value), {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    ...headers,
  });
}

const ROUTES = 'expected /, /api/search?text=..., /api/image/I, /api/info or /images/I';

function sendPicture(ctx: ApiContext, segment: string, res: http.ServerResponse): void {
  const row = parseRow(segment, ctx.retrieval.nImages);
  const pic = ctx.pictures.file(row);
  if (!pic) throw new HttpError(404, `image ${row}: no picture (serve with --images DIR --image-names FILE)`);
  const stream = fs.createReadStream(pic.file);
  stream.on('error', (e) => {
    log().warn(`${pic.file}: cannot read (${e.message})`);
    if (!res.headersSent) sendJson(res, 404, { error: `image ${row}: picture unreadable` });
    else res.destroy();
  });
  stream.on('open', () => {
    res.writeHead(200, {
      ...COMMON_HEADERS,
      'Content-Type': pic.type,
      'Content-Length': String(pic.size),
      'Cache-Control': 'max-age=3600',
    });
    stream.pipe(res);
  });
  res.on('close', () => stream.destroy());
}

async function route(ctx: ApiContext, req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal) {
  const raw = req.url ?? '';
  if (!raw.startsWith('/')) throw new HttpError(400, 'expected a path starting with /');
  if (req.method !== 'GET')
    throw new HttpError(405, `method ${String(req.method).slice(0, 20)}: expected GET`, { Allow: 'GET' });
  const url = new URL(raw, 'http://localhost');
  // matched on the path as sent: an encoded "/" or "." stays part of its segment and fails the row's digits
  const path = raw.split('?')[0];
  let m: RegExpExecArray | null;
  if (path === '/') {
    const page = pageHtml();
    return send(res, 200, page.html, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': page.csp,
      'Cache-Control': 'no-cache',
    });
  }
  if (path === '/api/search') return sendJson(res, 200, await search(ctx, url, signal));
  if (path === '/api/info') return sendJson(res, 200, info(ctx, url));
  if ((m = /^\/api\/image\/([^/]*)$/.exec(path)))
    return sendJson(res, 200, await imageCaptions(ctx, m[1], url, signal));
  if ((m = /^\/images\/([^/]*)$/.exec(path))) {
    if (url.search) throw new HttpError(400, 'images: expected no parameters');
    return sendPicture(ctx, m[1], res);
  }
  throw new HttpError(404, `not found: ${ROUTES}`);
}

export function startServer(ctx: ApiContext, o: ServeOptions): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
      const path = (req.url ?? '').split('?')[0].slice(0, 80);
      log().debug(`${req.method} ${path} ${res.statusCode} ${(performance.now() - t0).toFixed(0)} ms`);
    });
    route(ctx, req, res, ac.signal).catch((e: unknown) => {
      if (e instanceof QueueAborted) return; // nobody is listening
      if (e instanceof HttpError) return sendJson(res, e.status, { error: e.message }, e.headers);
      if (e instanceof QueueFull) return sendJson(res, 503, { error: `busy: ${e.message}` }, { 'Retry-After': '2' });
      // anything else is the server's fault: said in its log, not to the client
      log().error({ err: e }, `${req.method} ${(req.url ?? '').slice(0, 80)}: ${(e as Error).message}`);
      sendJson(res, 500, {
        error: e instanceof VslError ? `internal error: ${e.message}` : "internal error (see the server's log)",
      });
    });
  });
  server.maxConnections = 256;
  server.headersTimeout = 20_000;
  server.requestTimeout = 10 * 60_000; // an image query on COCO 5K takes a while
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new VslError(
          e.code === 'EADDRINUSE'
            ? `--port ${o.port}: address ${o.host}:${o.port} is in use (choose another --port, or 0 for any free one)`
            : `--host ${o.host} --port ${o.port}: cannot listen (${e.message})`,
        ),
      ),
    );
    server.listen(o.port, o.host, () => {
      const a = server.address() as AddressInfo;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({
        url: `http://${host}:${a.port}/`,
        close: () =>
          new Promise<void>((done) => {
            ctx.queue.drain(new QueueFull('the server is closing'));
            const force = setTimeout(() => server.closeAllConnections(), 5000);
            force.unref();
            server.close(() => {
              clearTimeout(force);
              done();
            });
            server.closeIdleConnections();
          }),
      });
    });
  });
}
