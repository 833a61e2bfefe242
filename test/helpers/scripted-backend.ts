/**
 * A hostile or quirky upstream scripted per test (undici's own tests do the
 * same): answers GET /v1/models so health probes pass, and POSTs with what the
 * test's handler writes. For behaviour the simulator has no mode for.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** A scripted backend on a loopback port. */
export interface ScriptedBackend {
  url: string;
  /** POST requests received (path and headers). */
  requests: Array<{ path: string; headers: IncomingMessage['headers']; body: string }>;
  close(): Promise<void>;
}

/** Starts a backend whose POST answers come from `answer`. */
export async function startScriptedBackend(answer: (request: IncomingMessage, response: ServerResponse, body: string) => void, model = 'x'): Promise<ScriptedBackend> {
  const requests: ScriptedBackend['requests'] = [];
  const server: Server = createServer((request, response) => {
    if (request.method === 'GET') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ object: 'list', data: [{ id: model, object: 'model' }] }));
      return;
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ path: request.url ?? '', headers: request.headers, body });
      answer(request, response, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
