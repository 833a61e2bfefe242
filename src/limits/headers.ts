/** Rate-limit and retry headers in the form OpenAI sends them. */

/** OpenAI's reset duration format: `20ms`, `1s`, `6m0s`, `1h2m3s`. */
export function formatResetDuration(ms: number): string {
  if (!(ms > 0)) return '0s';
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const total = Math.ceil(ms / 1000);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/** Limit state for one header trio. */
export interface LimitState {
  limit: number;
  remaining: number;
  resetMs: number;
}

/** `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the states given. */
export function rateLimitHeaders(states: { requests?: LimitState | undefined; tokens?: LimitState | undefined }): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const kind of ['requests', 'tokens'] as const) {
    const state = states[kind];
    if (!state) continue;
    headers[`x-ratelimit-limit-${kind}`] = String(state.limit);
    headers[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, Math.floor(state.remaining)));
    headers[`x-ratelimit-reset-${kind}`] = formatResetDuration(state.resetMs);
  }
  return headers;
}

/**
 * `retry-after` (whole seconds, rounded up) and `retry-after-ms`, which the
 * OpenAI SDKs honour. Add `x-should-retry: false` when retrying cannot help
 * (a request larger than the limit, an exhausted budget).
 */
export function retryAfterHeaders(ms: number, shouldRetry = true): Record<string, string> {
  const headers: Record<string, string> = { 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))), 'retry-after-ms': String(Math.max(1, Math.ceil(ms))) };
  if (!shouldRetry) headers['x-should-retry'] = 'false';
  return headers;
}
