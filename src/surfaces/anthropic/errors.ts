/**
 * Errors in Anthropic's shape: `{"type":"error","error":{"type","message"}}` with the status kept.
 * The OpenAI error type decides where it is telling (auth, permission, rate limit); the status
 * decides the rest, as Anthropic's API pairs them (400 invalid_request_error, 401
 * authentication_error, 403 permission_error, 404 not_found_error, 429 rate_limit_error,
 * 503/529 overloaded_error, 504 timeout_error, other 5xx api_error).
 */

/** Gateway codes that mean "no capacity right now" (Anthropic: overloaded_error). */
const overloadedCodes = new Set(['no_backend_available', 'slo_unmet', 'server_shutting_down']);

/** The Anthropic error type for an OpenAI-shaped error (status, type and code as the gateway has them). */
export function anthropicErrorType(status: number | undefined, type: string, code?: string | null): string {
  if (code && overloadedCodes.has(code)) return 'overloaded_error';
  switch (type) {
    case 'authentication_error':
      return 'authentication_error';
    case 'permission_error':
      return 'permission_error';
    case 'not_found_error':
      return 'not_found_error';
    case 'rate_limit_error':
    case 'insufficient_quota':
      return 'rate_limit_error';
    case 'overloaded_error':
      return 'overloaded_error';
    default:
      break;
  }
  if (status === undefined) return type === 'invalid_request_error' ? 'invalid_request_error' : 'api_error';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 503 || status === 529) return 'overloaded_error';
  if (status === 504) return 'timeout_error';
  if (status >= 400 && status < 500) return 'invalid_request_error';
  return 'api_error';
}

/** An error for a /v1/messages client: the same status, Anthropic's body. */
export function anthropicError(error: { status: number; type: string; message: string; code?: string | null }): { status: number; body: string } {
  const type = anthropicErrorType(error.status, error.type, error.code);
  return { status: error.status, body: JSON.stringify({ type: 'error', error: { type, message: error.message } }) };
}
