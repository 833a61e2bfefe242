/**
 * What the HTTP listener bounds before any route runs: the time to receive a
 * request's headers and the whole request (Node's own timers, so a slow sender
 * is cut whether or not a route reads its body), and the errors Node finds on
 * the wire (timeouts, malformed requests, oversized headers) answered in the
 * OpenAI shape instead of Fastify's.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { SwitchyardConfig } from '../config/schema.ts';
import { gatewayError, openaiErrorRenderer, type GatewayError } from '../errors.ts';
import { lingering } from './linger.ts';

/** Fastify options for the listener's timeouts (Node's `headersTimeout`, `requestTimeout`). */
export function listenerTimeouts(server: SwitchyardConfig['server']): {
  requestTimeout: number;
  http: { headersTimeout: number; connectionsCheckingInterval: number; requireHostHeader: boolean };
} {
  const requestTimeout = server.requestTimeoutMs;
  // Node refuses a headers timeout longer than the request timeout (when that is on).
  const headersTimeout = requestTimeout > 0 && server.headersTimeoutMs > requestTimeout ? requestTimeout : server.headersTimeoutMs;
  const shortest = Math.min(...[requestTimeout, headersTimeout].filter((ms) => ms > 0), 4_000);
  // Node checks both every `connectionsCheckingInterval` (30 s by default): a timeout fires within a quarter of
  // the shorter one (at most 1 s late), at the cost of a walk over the open connections each time.
  // Node's own Host check answers a bare 400 outside our error shape; missingHost() does it in ours.
  return { requestTimeout, http: { headersTimeout, connectionsCheckingInterval: Math.max(25, Math.floor(shortest / 4)), requireHostHeader: false } };
}

/**
 * HTTP/1.1 requires a Host header (RFC 9112 §3.2); a request without one is refused in our shape and its
 * connection closed, as a proxy that cannot tell which site is meant should.
 */
export function missingHost(request: IncomingMessage): GatewayError | undefined {
  if (request.headers.host !== undefined || request.httpVersionMajor !== 1 || request.httpVersionMinor !== 1) return undefined;
  return gatewayError('SWY_ERR_MALFORMED_REQUEST', { message: 'An HTTP/1.1 request needs a Host header. Send a well-formed request.' });
}

function errorFor(code: string | undefined): GatewayError {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return gatewayError('SWY_ERR_REQUEST_TIMEOUT');
  if (code === 'HPE_HEADER_OVERFLOW') return gatewayError('SWY_ERR_HEADERS_TOO_LARGE');
  return gatewayError('SWY_ERR_MALFORMED_REQUEST');
}

/** The Node response currently written on `socket`, if any (Node keeps it there while a request is answered). */
function currentResponse(socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/**
 * Fastify's `clientErrorHandler`: answers in our shape and closes. A socket
 * whose answer already began (or that is discarding a body after its answer,
 * see linger.ts) is closed without a second answer.
 */
export function clientErrorHandler(observe: (error: GatewayError) => void) {
  return function onClientError(error: Error & { code?: string }, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    if (!socket.writable || lingering.has(socket) || currentResponse(socket)?.headersSent) {
      socket.destroy();
      return;
    }
    const gatewayFailure = errorFor(error.code);
    observe(gatewayFailure);
    const rendered = openaiErrorRenderer.response(gatewayFailure);
    const body = Buffer.from(rendered.body);
    let head = `HTTP/1.1 ${rendered.status} ${STATUS_CODES[rendered.status] ?? ''}\r\n`;
    for (const [name, value] of Object.entries(rendered.headers)) head += `${name}: ${value}\r\n`;
    socket.end(`${head}content-length: ${body.length}\r\nconnection: close\r\n\r\n${rendered.body}`);
    // Whatever the client still sends is not read: close once the answer is out.
    socket.destroySoon();
  };
}
