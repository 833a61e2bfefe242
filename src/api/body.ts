/**
 * Request bodies: kept as the client's text (forwarded nearly untouched) plus
 * one parse for the few fields the gateway reads. Any content type is read as
 * JSON, since `curl -d` sends form encoding by default.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { gatewayError } from '../errors.ts';

/** A JSON request body: the text as received and its parsed object. */
export interface ParsedBody {
  raw: string;
  json: Record<string, unknown>;
}

function parseBody(_request: FastifyRequest, body: string, done: (error: Error | null, value?: ParsedBody) => void): void {
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

async function bodyParser(app: FastifyInstance): Promise<void> {
  app.removeAllContentTypeParsers();
  // The exact type too: Fastify caches the lookup of a registered type, while '*' re-parses the header every time.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseBody);
  app.addContentTypeParser('*', { parseAs: 'string' }, parseBody);
}

export const bodyPlugin = fastifyPlugin(bodyParser, { name: 'switchyard-body' });
