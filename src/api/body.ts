/**
 * Request bodies: kept as the client's text (forwarded nearly untouched) plus
 * one parse for the few fields the gateway reads. Any content type is read as
 * JSON, since `curl -d` sends form encoding by default.
 *
 * Bounded twice: one body by `server.bodyLimitBytes` (413), and all bodies
 * being received or held by requests in flight by `server.maxInflightBodyBytes`
 * (503 with retry-after), so a burst of large bodies cannot take the process's
 * memory. A declared length is reserved before a byte is read; a chunked body
 * is counted as it arrives. What is held is given back when the response closes.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { gatewayError } from '../errors.ts';

/** A JSON request body: the text as received and its parsed object. */
export interface ParsedBody {
  raw: string;
  json: Record<string, unknown>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The Node response of this request (set in onRequest): held body bytes are given back when it closes. */
    response: ServerResponse | null;
  }
}

/** Body bytes held by requests in flight, against `server.maxInflightBodyBytes`. */
export class BodyBudget {
  held = 0;
  readonly max: number;
  constructor(max: number) {
    this.max = max;
  }

  /** Takes `bytes` if they fit (a body alone larger than the bound never does, unless nothing else is held). */
  take(bytes: number): boolean {
    if (this.held + bytes > this.max && this.held > 0) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
  }
}

type Done = (error: Error | null, value?: ParsedBody) => void;

function parseJson(body: string, done: Done): void {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    done(gatewayError('SWY_ERR_INVALID_JSON', { message: `The request body is not valid JSON (${(error as Error).message}).` }));
    return;
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    done(gatewayError('SWY_ERR_INVALID_JSON', { message: 'The request body must be a JSON object.' }));
    return;
  }
  done(null, { raw: body, json: json as Record<string, unknown> });
}

function busy(): Error {
  return gatewayError('SWY_ERR_BODIES_IN_FLIGHT', { retryAfterSeconds: 1 });
}

const heldBytes = Symbol('switchyard.heldBodyBytes');
const heldFrom = Symbol('switchyard.heldBodyBudget');
type HoldingResponse = ServerResponse & { [heldBytes]?: number; [heldFrom]?: BodyBudget };

/** The response's 'close' listener: one function for every request (no closure or once-wrapper per request). */
function giveBack(this: HoldingResponse): void {
  const bytes = this[heldBytes] ?? 0;
  this[heldBytes] = 0;
  if (bytes > 0) this[heldFrom]?.give(bytes);
}

/** Holds `bytes` (taken from `budget`) until the response closes — answered, failed or abandoned; at once when it has. */
function holdUntilClosed(budget: BodyBudget, response: HoldingResponse | null, bytes: number): void {
  if (response === null || response.closed) {
    budget.give(bytes);
  } else if (response[heldFrom] === undefined) {
    response[heldFrom] = budget;
    response[heldBytes] = bytes;
    response.on('close', giveBack);
  } else {
    response[heldBytes] = (response[heldBytes] ?? 0) + bytes;
  }
}

/** Reads bodies within the limits; `budget` is shared by every request of the listener. */
function bodyReader(limit: number, budget: BodyBudget) {
  return function readBody(request: FastifyRequest, payload: NodeJS.ReadableStream, done: Done): void {
    const declaredHeader = request.headers['content-length'];
    const declared = declaredHeader === undefined ? -1 : Number(declaredHeader);
    // Refused before a byte is read: the client still gets the error (see linger.ts), its body is discarded.
    if (declared > limit) {
      done(gatewayError('SWY_ERR_BODY_TOO_LARGE'));
      return;
    }
    // A declared length is reserved up front; a chunked body reserves as it arrives. Either is held until the
    // response closes: the text and its parsed object live as long as the request does.
    const chunked = declared < 0;
    if (declared > 0) {
      if (!budget.take(declared)) {
        done(busy());
        return;
      }
      holdUntilClosed(budget, request.response, declared);
    }
    let received = 0;
    const chunks: Buffer[] = [];
    const stop = (error: Error | null): void => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onError);
      if (error) done(error);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) {
        stop(gatewayError('SWY_ERR_BODY_TOO_LARGE'));
        return;
      }
      if (chunked) {
        if (!budget.take(chunk.length)) {
          stop(busy());
          return;
        }
        holdUntilClosed(budget, request.response, chunk.length);
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop(null);
      if (declared >= 0 && received !== declared) {
        done(gatewayError('SWY_ERR_INVALID_JSON', { message: 'The request body is shorter than its Content-Length.' }));
        return;
      }
      parseJson(chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks, received).toString('utf8'), done);
    };
    const onError = (error: Error): void => stop(Object.assign(error, { statusCode: 400 }));
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
    payload.resume();
  };
}

async function bodyParser(app: FastifyInstance): Promise<void> {
  const { server } = app.switchyard.config;
  const budget = new BodyBudget(server.maxInflightBodyBytes);
  app.decorateRequest('response', null);
  app.decorate('bodyBudget', budget);
  const read = bodyReader(server.bodyLimitBytes, budget);
  app.removeAllContentTypeParsers();
  // The exact type too: Fastify caches the lookup of a registered type, while '*' re-parses the header every time.
  app.addContentTypeParser('application/json', read);
  app.addContentTypeParser('*', read);
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Request body bytes held by requests in flight (see body.ts). */
    bodyBudget: BodyBudget;
  }
}

export const bodyPlugin = fastifyPlugin(bodyParser, { name: 'switchyard-body', decorators: { fastify: ['switchyard'] } });
