/**
 * The one place an error becomes a response, for every listener (the gateway
 * and the admin app): framework errors are mapped onto the catalogue, 5xx are
 * logged, the error is noted on the request record by identity, and the route's
 * surface renders it (`config.errorRenderer` on the route; OpenAI's otherwise).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { gatewayError, GatewayError, openaiErrorRenderer, type ErrorRenderer } from '../errors.ts';
import { noteError } from '../proxy/record.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** How this route's API surface shows errors (OpenAI's shape when absent). */
    errorRenderer?: ErrorRenderer;
  }
}

/** Maps an error thrown anywhere (Fastify, a plugin, our own code) onto the catalogue. */
export function toGatewayError(error: FastifyError | Error): GatewayError {
  if (error instanceof GatewayError) return error;
  const code = (error as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return gatewayError('SWY_ERR_BODY_TOO_LARGE');
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || code === 'FST_ERR_CTP_INVALID_JSON_BODY') return gatewayError('SWY_ERR_INVALID_JSON');
  // Only a client's body nested thousands of levels deep drives our recursive code (or JSON.stringify) this far.
  if (error instanceof RangeError && error.message.includes('call stack')) {
    return gatewayError('SWY_ERR_INVALID_PARAM', { message: 'The request nests JSON too deeply; flatten it (at most 128 levels).', cause: error });
  }
  const status = (error as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return gatewayError('SWY_ERR_INVALID_PARAM', { message: `Bad request: ${error.message}` });
  }
  return gatewayError('SWY_ERR_INTERNAL', { cause: error });
}

/** Observes every error sent (the admin app has no request record: it counts here). */
export type ErrorObserver = (error: GatewayError) => void;

/** Renders `error` with the route's surface and sends it; logs what the gateway must look at. */
export function sendError(request: FastifyRequest, reply: FastifyReply, thrown: FastifyError | Error, observe?: ErrorObserver): FastifyReply {
  const error = toGatewayError(thrown);
  if (error.status >= 500) {
    const fields = { requestId: request.id, errorName: error.errorName, origin: error.origin, status: error.status };
    // A bug (not an error we meant to show) is logged with its stack; a 5xx we chose is a warning with its name.
    if (!(thrown instanceof GatewayError)) request.log.error({ ...fields, err: thrown }, 'unhandled error');
    else if (error.origin === 'gateway' && error.errorName === 'SWY_ERR_INTERNAL') request.log.error({ ...fields, err: error.cause ?? error }, 'internal error');
  }
  const record = request.record as FastifyRequest['record'] | null | undefined;
  if (record) {
    record.status = error.status;
    noteError(record, error);
  }
  observe?.(error);
  // Fastify closes the connection after a body parser's error; a body refused unread is discarded after the
  // answer instead (api/linger.ts), so a client still sending it gets the answer rather than a reset.
  if ((error.errorName === 'SWY_ERR_BODY_TOO_LARGE' || error.errorName === 'SWY_ERR_BODIES_IN_FLIGHT') && !request.raw.complete) reply.removeHeader('connection');
  const renderer = request.routeOptions.config?.errorRenderer ?? openaiErrorRenderer;
  const rendered = renderer.response(error);
  return reply.code(rendered.status).headers(rendered.headers).send(rendered.body);
}

/** The error and not-found handlers of one listener. */
export function installErrorHandlers(app: FastifyInstance, observe?: ErrorObserver): void {
  app.setErrorHandler((error: FastifyError | Error, request, reply) => sendError(request, reply, error, observe));
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]?.slice(0, 200);
    const error = gatewayError('SWY_ERR_UNKNOWN_ROUTE', {
      message: `Unknown URL: ${request.method} ${path}. See GET /v1/models and the README for the endpoints Switchyard serves.`,
    });
    return sendError(request, reply, error, observe);
  });
}
