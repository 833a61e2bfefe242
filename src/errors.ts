/**
 * The one catalogue of errors Switchyard produces, and the one renderer to the
 * OpenAI error shape `{"error":{"message","type","param","code"}}`.
 * README's error table is checked against `errorCatalogue` by a test.
 */

/** OpenAI error `type` values the gateway emits. */
export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'server_error';

/** One catalogue entry: stable status, type and OpenAI-style string code. */
export interface ErrorSpec {
  status: number;
  type: OpenAIErrorType;
  code: string;
  /** Default message; states how to fix the problem where the client can. */
  message: string;
}

export const errorCatalogue = {
  SWY_ERR_INVALID_JSON: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_json',
    message: 'The request body is not valid JSON. Send a JSON object with `Content-Type: application/json`.',
  },
  SWY_ERR_INVALID_PARAM: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_value',
    message: 'A request parameter is missing or has the wrong type.',
  },
  SWY_ERR_CONTEXT_LENGTH: {
    status: 400,
    type: 'invalid_request_error',
    code: 'context_length_exceeded',
    message: "The prompt plus max_tokens does not fit the model's context window. Shorten the prompt or lower max_tokens.",
  },
  SWY_ERR_SENSITIVE_DATA: {
    status: 400,
    type: 'invalid_request_error',
    code: 'sensitive_data_blocked',
    message: 'The request contains data this gateway does not send on.',
  },

  SWY_ERR_INVALID_PATH: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_path',
    message: 'The URL path is not in canonical form. Send it as documented, e.g. POST /v1/chat/completions.',
  },
  SWY_ERR_MALFORMED_REQUEST: {
    status: 400,
    type: 'invalid_request_error',
    code: 'malformed_request',
    message: 'The request is not valid HTTP/1.1 (e.g. conflicting Content-Length and Transfer-Encoding, or a malformed header). Send a well-formed request.',
  },
  SWY_ERR_UPSTREAM_REJECTED: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_request',
    message: 'The backend rejected the request as invalid. Fix the request as the message says.',
  },
  SWY_ERR_SURFACE_NOT_SERVED: {
    status: 400,
    type: 'invalid_request_error',
    code: 'unsupported_endpoint',
    message: 'No backend of this model serves this endpoint. Use another endpoint or model, or ask the operator to enable it (backends[].surfaces).',
  },
  SWY_ERR_CONFIG_INVALID: {
    status: 400,
    type: 'invalid_request_error',
    code: 'config_invalid',
    message: 'The config file is not valid; the running configuration stays. Fix the problems listed and reload again.',
  },
  SWY_ERR_INVALID_API_KEY: {
    status: 401,
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    message: 'Incorrect API key provided. Send a valid key as `Authorization: Bearer sk-swy-…`; ask the operator for one.',
  },
  SWY_ERR_ADMIN_TOKEN: {
    status: 401,
    type: 'invalid_request_error',
    code: 'invalid_admin_token',
    message: 'The admin endpoints need `Authorization: Bearer <admin.token>`.',
  },
  SWY_ERR_MODEL_NOT_ALLOWED: {
    status: 403,
    type: 'permission_error',
    code: 'model_not_allowed',
    message: 'This API key may not use this model. GET /v1/models lists the models, ask the operator to allow it.',
  },
  SWY_ERR_ADMIN_DISABLED: {
    status: 403,
    type: 'permission_error',
    code: 'admin_disabled',
    message: 'The admin endpoints are disabled: with client authentication on (auth.mode keys or jwt), set admin.token to use them.',
  },
  SWY_ERR_UNKNOWN_ROUTE: {
    status: 404,
    type: 'invalid_request_error',
    code: 'unknown_url',
    message: 'Unknown URL. See GET /v1/models and the README for the endpoints Switchyard serves.',
  },
  SWY_ERR_MODEL_NOT_FOUND: {
    status: 404,
    type: 'invalid_request_error',
    code: 'model_not_found',
    message: 'The model does not exist on this gateway. GET /v1/models lists the models you can use.',
  },
  SWY_ERR_RESPONSE_NOT_FOUND: {
    status: 404,
    type: 'invalid_request_error',
    code: 'response_not_found',
    message: 'No stored response has this id: it was not stored (send store: true), has expired, or belongs to another tenant.',
  },
  SWY_ERR_REQUEST_TIMEOUT: {
    status: 408,
    type: 'invalid_request_error',
    code: 'request_timeout',
    message: 'The request did not arrive in time (server.headersTimeoutMs for its headers, server.requestTimeoutMs for the whole request). Send it at once.',
  },
  SWY_ERR_CLIENT_STALLED: {
    status: 408,
    type: 'invalid_request_error',
    code: 'client_too_slow',
    message: "The client stopped reading the stream for longer than the backend's idle timeout; the answer was cut. Read streams as they arrive.",
  },
  SWY_ERR_RELOAD_UNAVAILABLE: {
    status: 409,
    type: 'invalid_request_error',
    code: 'reload_unavailable',
    message: 'This gateway was not started from a config file (`switchyard serve --config FILE`), so there is nothing to reload.',
  },
  SWY_ERR_BODY_TOO_LARGE: {
    status: 413,
    type: 'invalid_request_error',
    code: 'request_too_large',
    message: 'The request body is larger than the gateway accepts (server.bodyLimitBytes).',
  },
  SWY_ERR_RATE_LIMIT_REQUESTS: {
    status: 429,
    type: 'rate_limit_error',
    code: 'rate_limit_exceeded',
    message: 'Rate limit reached for requests per minute. Retry after the time in retry-after.',
  },
  SWY_ERR_RATE_LIMIT_TOKENS: {
    status: 429,
    type: 'rate_limit_error',
    code: 'rate_limit_exceeded',
    message: 'Rate limit reached for tokens per minute. Retry after the time in retry-after, or lower max_tokens.',
  },
  SWY_ERR_INSUFFICIENT_QUOTA: {
    status: 429,
    type: 'insufficient_quota',
    code: 'insufficient_quota',
    message: 'The budget of this API key or its tenant is used up for the current period. Ask the operator to raise it, or wait until it resets.',
  },
  SWY_ERR_OVERLOADED: {
    status: 429,
    type: 'rate_limit_error',
    code: 'server_overloaded',
    message: 'Every backend for this model is at capacity and the wait queue is full. Retry after the time in retry-after.',
  },
  SWY_ERR_UPSTREAM_RATE_LIMITED: {
    status: 429,
    type: 'rate_limit_error',
    code: 'rate_limit_exceeded',
    message: 'The backend is at capacity (HTTP 429). Retry after the time in retry-after.',
  },
  SWY_ERR_HEADERS_TOO_LARGE: {
    status: 431,
    type: 'invalid_request_error',
    code: 'headers_too_large',
    message: 'The request headers are larger than the gateway accepts (16 KiB). Send fewer or shorter headers.',
  },
  SWY_ERR_INTERNAL: {
    status: 500,
    type: 'server_error',
    code: 'internal_error',
    message: 'The gateway failed unexpectedly. Retry; if it persists, report the x-request-id.',
  },
  SWY_ERR_UPSTREAM: {
    status: 502,
    type: 'server_error',
    code: 'upstream_error',
    message: 'The backend returned an error.',
  },
  SWY_ERR_UPSTREAM_UNREACHABLE: {
    status: 502,
    type: 'server_error',
    code: 'upstream_unreachable',
    message: 'No backend for this model could be reached. Retry later.',
  },
  SWY_ERR_UPSTREAM_AUTH: {
    status: 502,
    type: 'server_error',
    code: 'upstream_auth_failed',
    message: "The backend rejected the gateway's credentials; the operator must fix backends[].apiKey.",
  },
  SWY_ERR_UPSTREAM_STREAM: {
    status: 502,
    type: 'server_error',
    code: 'upstream_stream_interrupted',
    message: 'The backend stream ended before completion; the answer is incomplete.',
  },
  SWY_ERR_UPSTREAM_TOO_LARGE: {
    status: 502,
    type: 'server_error',
    code: 'upstream_answer_too_large',
    message: 'The backend sent an answer larger than the gateway accepts (backends[].maxAnswerBytes, or maxEventBytes for one stream event).',
  },
  SWY_ERR_NO_BACKEND: {
    status: 503,
    type: 'server_error',
    code: 'no_backend_available',
    message: 'No healthy backend serves this model right now. Retry after the time in retry-after.',
  },
  SWY_ERR_NO_BACKEND_IN_ZONE: {
    status: 503,
    type: 'server_error',
    code: 'no_backend_in_zone',
    message: 'No backend in a zone this request may use serves this model right now; it is not sent outside those zones.',
  },
  SWY_ERR_SLO_UNMET: {
    status: 503,
    type: 'server_error',
    code: 'slo_unmet',
    message: "No backend can meet this model's latency objective right now (onSloMiss: reject). Retry after the time in retry-after.",
  },
  SWY_ERR_LIMITS_UNAVAILABLE: {
    status: 503,
    type: 'server_error',
    code: 'limits_unavailable',
    message: 'The gateway cannot check rate limits or budgets because Redis is unreachable (limits.onRedisError: closed). Retry shortly.',
  },
  SWY_ERR_AUTH_UNAVAILABLE: {
    status: 503,
    type: 'server_error',
    code: 'auth_unavailable',
    message: 'The gateway cannot look up API keys because Redis is unreachable. Retry shortly.',
  },
  SWY_ERR_BODIES_IN_FLIGHT: {
    status: 503,
    type: 'server_error',
    code: 'server_busy',
    message: 'The gateway is holding as many request bodies as it may (server.maxInflightBodyBytes). Retry after the time in retry-after.',
  },
  SWY_ERR_SHUTTING_DOWN: {
    status: 503,
    type: 'server_error',
    code: 'server_shutting_down',
    message: 'The gateway is shutting down. Retry; another replica will answer.',
  },
  SWY_ERR_UPSTREAM_TIMEOUT: {
    status: 504,
    type: 'server_error',
    code: 'upstream_timeout',
    message: 'The backend did not answer in time. Retry, or lower max_tokens.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorName = keyof typeof errorCatalogue;

/** Who produced an error: the gateway itself, or a backend whose answer the gateway relays. */
export type ErrorOrigin = 'gateway' | 'upstream';

/** Body of every error response. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** What a GatewayError is built with; status, type and code override the catalogue's (an upstream's own status). */
export interface GatewayErrorOptions {
  message?: string;
  param?: string | null;
  retryAfterSeconds?: number;
  cause?: unknown;
  origin?: ErrorOrigin;
  status?: number;
  type?: string;
  code?: string;
}

/**
 * An error the gateway means to show the client. It keeps its identity: the
 * catalogue name (`SWY_ERR_*`) and its origin, which logs and metrics key on
 * (an upstream 429 is not a refusal by the gateway). Rendered by a surface's
 * ErrorRenderer.
 */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  /** The catalogue entry this error is an instance of. */
  readonly errorName: ErrorName;
  readonly origin: ErrorOrigin;
  readonly status: number;
  readonly type: string;
  readonly code: string;
  readonly param: string | null;
  /** Seconds for `retry-after`, when the client should come back later. */
  readonly retryAfterSeconds: number | undefined;

  constructor(errorName: ErrorName, options: GatewayErrorOptions = {}) {
    const spec: ErrorSpec = errorCatalogue[errorName];
    super(options.message ?? spec.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.errorName = errorName;
    this.origin = options.origin ?? 'gateway';
    this.status = options.status ?? spec.status;
    this.type = options.type ?? spec.type;
    this.code = options.code ?? spec.code;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  toJSON(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Builds a catalogue error; `message` overrides the default text. */
export function gatewayError(name: ErrorName, options: GatewayErrorOptions = {}): GatewayError {
  return new GatewayError(name, options);
}

/** An error as one API surface puts it on the wire. */
export interface RenderedError {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/**
 * How one API surface shows errors: a whole response, and an event that ends a
 * stream already under way. OpenAI's shape is the default; a surface with its
 * own shape (Anthropic's `{"type":"error","error":{…}}`) supplies its own.
 */
export interface ErrorRenderer {
  response(error: GatewayError): RenderedError;
  streamEvent(error: GatewayError): string;
}

function retryHeaders(error: GatewayError): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  return headers;
}

/** `{"error":{"message","type","param","code"}}`, and as an SSE `data:` event. */
export const openaiErrorRenderer: ErrorRenderer = {
  response: (error) => ({ status: error.status, body: JSON.stringify(error.toJSON()), headers: retryHeaders(error) }),
  streamEvent: (error) => `data: ${JSON.stringify(error.toJSON())}\n\n`,
};

/** Any thrown value as a GatewayError: unknown ones become SWY_ERR_INTERNAL. */
export function asGatewayError(error: unknown): GatewayError {
  return error instanceof GatewayError ? error : gatewayError('SWY_ERR_INTERNAL');
}

/** The one way an error reaches a client: through the surface's renderer (OpenAI's by default). */
export function renderError(error: unknown, renderer: ErrorRenderer = openaiErrorRenderer): RenderedError {
  return renderer.response(asGatewayError(error));
}

/** One SSE event carrying an error, for failures after a stream has started. */
export function renderErrorEvent(error: GatewayError, renderer: ErrorRenderer = openaiErrorRenderer): string {
  return renderer.streamEvent(error);
}
