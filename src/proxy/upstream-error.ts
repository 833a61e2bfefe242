/**
 * Turns whatever a runtime sent as an error into the OpenAI shape: vLLM's
 * `{"error":"Unauthorized"}`, integer `code`s, llama.cpp's
 * `exceed_context_size_error`, non-JSON bodies. Decides what the client sees;
 * the verdict (retry elsewhere? the backend's fault?) is failure.ts's.
 */
import { AttemptError } from '../backends/failure.ts';
import { gatewayError, type GatewayError } from '../errors.ts';
import { sanitiseMessage, upstreamDetail } from './sanitise.ts';

const statusTypes: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'invalid_request_error',
  413: 'invalid_request_error',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
};

const openaiTypes = new Set(['invalid_request_error', 'authentication_error', 'permission_error', 'not_found_error', 'rate_limit_error', 'server_error']);

interface UpstreamErrorFields {
  message: string;
  type: string | undefined;
  param: string | null;
  code: string | null;
}

/** A short identifier from upstream (`code`, `param`), or null when it is not one. */
function identifier(value: unknown, max: number): string | null {
  return typeof value === 'string' && value.length <= max && /^[\w.[\]:-]+$/.test(value) ? value : null;
}

/** The upstream error's fields, with the message made safe to show (see sanitise.ts). */
function readFields(status: number, bodyText: string): UpstreamErrorFields {
  const fields = rawFields(status, bodyText);
  return {
    message: sanitiseMessage(fields.message, `Backend answered HTTP ${status}`),
    type: identifier(fields.type, 64) ?? undefined,
    param: identifier(fields.param, 128),
    code: identifier(fields.code, 64),
  };
}

function rawFields(status: number, bodyText: string): UpstreamErrorFields {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    const snippet = bodyText.trim().slice(0, 4096);
    return { message: snippet ? `Backend answered HTTP ${status}: ${snippet}` : `Backend answered HTTP ${status} with an empty body`, type: undefined, param: null, code: null };
  }
  const root = parsed as { error?: unknown; message?: unknown; detail?: unknown };
  const error = root?.error;
  if (typeof error === 'string') return { message: error, type: undefined, param: null, code: null };
  if (error && typeof error === 'object') {
    const fields = error as { message?: unknown; type?: unknown; param?: unknown; code?: unknown };
    return {
      message: typeof fields.message === 'string' ? fields.message : `Backend answered HTTP ${status}`,
      type: typeof fields.type === 'string' ? fields.type : undefined,
      param: typeof fields.param === 'string' ? fields.param : null,
      code: typeof fields.code === 'string' ? fields.code : null,
    };
  }
  const message = typeof root?.message === 'string' ? root.message : typeof root?.detail === 'string' ? root.detail : `Backend answered HTTP ${status}`;
  return { message, type: undefined, param: null, code: null };
}

/** Is this upstream error about the prompt not fitting the context window? */
function isContextError(fields: UpstreamErrorFields): boolean {
  return (
    fields.type === 'exceed_context_size_error' ||
    fields.code === 'context_length_exceeded' ||
    /maximum context length|context length|exceeds the available context size|exceed_context_size/i.test(fields.message)
  );
}

/**
 * What the client should see for an upstream error response. `promptParam` is
 * the request field holding the prompt (`messages`, `prompt` or `input`).
 * Every error made here has origin `upstream`.
 */
export function normaliseUpstreamError(status: number, bodyText: string, backendId: string, promptParam: string): GatewayError {
  const fields = readFields(status, bodyText);
  if (status === 400 && isContextError(fields)) {
    return gatewayError('SWY_ERR_CONTEXT_LENGTH', { message: fields.message, param: promptParam, origin: 'upstream' });
  }
  if (status === 401 || status === 403) {
    return gatewayError('SWY_ERR_UPSTREAM_AUTH', {
      origin: 'upstream',
      message: `Backend ${backendId} rejected the gateway's credentials (HTTP ${status}: ${fields.message}); the operator must fix backends[].apiKey.`,
    });
  }
  if (status === 404) {
    return gatewayError('SWY_ERR_UPSTREAM', { origin: 'upstream', message: `Backend ${backendId} does not serve the configured model (HTTP 404: ${fields.message}).` });
  }
  if (status === 429) {
    return gatewayError('SWY_ERR_UPSTREAM_RATE_LIMITED', { origin: 'upstream', message: fields.message, param: fields.param, ...(fields.code ? { code: fields.code } : {}) });
  }
  if (status >= 500 || status === 408) {
    return gatewayError('SWY_ERR_UPSTREAM', { origin: 'upstream', status, message: fields.message, param: fields.param, ...(fields.code ? { code: fields.code } : {}) });
  }
  const type = fields.type && openaiTypes.has(fields.type) ? fields.type : (statusTypes[status] ?? 'invalid_request_error');
  return gatewayError('SWY_ERR_UPSTREAM_REJECTED', {
    origin: 'upstream',
    status,
    type,
    message: fields.message,
    param: fields.param,
    ...(fields.code ? { code: fields.code } : {}),
  });
}

/** A failed attempt from an upstream error response, with its verdict (see failure.ts). */
export function upstreamFailure(status: number, bodyText: string, backendId: string, promptParam: string, retryAfter?: string): AttemptError {
  const error = normaliseUpstreamError(status, bodyText, backendId, promptParam);
  const detail = upstreamDetail(bodyText);
  return new AttemptError('upstream-status', error, retryAfter === undefined ? { upstreamStatus: status, detail } : { upstreamStatus: status, retryAfter, detail });
}

/** The status an in-stream error event stands for: its integer `code`, else 502. */
function streamEventStatus(json: string): number {
  try {
    const code = (JSON.parse(json) as { error?: { code?: unknown } }).error?.code;
    if (typeof code === 'number' && code >= 400 && code < 600) return code;
  } catch {
    // not JSON: a broken stream
  }
  return 502;
}

/** A failed attempt from an error event that arrived inside an SSE stream (already JSON). */
export function streamEventFailure(json: string, backendId: string, promptParam: string): AttemptError {
  return upstreamFailure(streamEventStatus(json), json, backendId, promptParam);
}
