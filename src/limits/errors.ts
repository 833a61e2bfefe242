/**
 * Errors of auth and limits. The specs below are meant for src/errors.ts's
 * catalogue: once they are there, replace `limitErrors` with `errorCatalogue`
 * (same names) and delete the copies.
 */
import { GatewayError, type ErrorSpec } from '../errors.ts';

export const limitErrors = {
  SWY_ERR_INVALID_API_KEY: {
    status: 401,
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    message: 'Incorrect API key provided. Send a valid key as `Authorization: Bearer sk-swy-…`; ask the operator for one.',
  },
  SWY_ERR_MODEL_NOT_ALLOWED: {
    status: 403,
    type: 'permission_error',
    code: 'model_not_allowed',
    message: 'This API key may not use this model. GET /v1/models lists the models, ask the operator to allow it.',
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
} as const satisfies Record<string, ErrorSpec>;

export type LimitErrorName = keyof typeof limitErrors;

/** Builds one of the errors above. */
export function limitError(
  name: LimitErrorName,
  options: { message?: string; param?: string | null; retryAfterSeconds?: number; cause?: unknown } = {},
): GatewayError {
  return new GatewayError(limitErrors[name], options);
}
