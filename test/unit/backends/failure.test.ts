/** The one decision about a failed attempt: pinned as a table, so the callers cannot drift apart again. */
import { describe, expect, it } from 'vitest';
import { AttemptError, judgeFailure, type FailureKind } from '../../../src/backends/failure.ts';
import { gatewayError } from '../../../src/errors.ts';

const table: Array<[FailureKind, number | undefined, boolean, boolean]> = [
  // kind, status, retryable, backendFault
  ['connect-error', undefined, true, true],
  ['connection-reset', undefined, true, true],
  ['first-byte-timeout', undefined, true, true],
  ['idle-timeout', undefined, false, true],
  ['total-timeout', undefined, false, true],
  ['stream-interrupted', undefined, true, true],
  ['invalid-answer', undefined, true, true],
  ['client-closed', undefined, false, false],
  ['upstream-status', 400, false, false],
  ['upstream-status', 409, false, false],
  ['upstream-status', 413, false, false],
  ['upstream-status', 422, false, false],
  ['upstream-status', 401, true, true],
  ['upstream-status', 403, true, true],
  ['upstream-status', 404, true, true],
  ['upstream-status', 408, true, true],
  ['upstream-status', 429, true, true],
  ['upstream-status', 500, true, true],
  ['upstream-status', 501, true, true],
  ['upstream-status', 502, true, true],
  ['upstream-status', 503, true, true],
  ['upstream-status', 504, true, true],
  ['upstream-status', undefined, true, true],
];

describe('failure verdict', () => {
  it.each(table)('%s %s: retryable %s, backend fault %s', (kind, status, retryable, backendFault) => {
    expect(judgeFailure(kind, status)).toEqual({ retryable, backendFault });
  });

  it('is computed once, on the AttemptError, from its kind and upstream status', () => {
    const error = new AttemptError('upstream-status', gatewayError('SWY_ERR_UPSTREAM'), { upstreamStatus: 408 });
    expect(error.retryable).toBe(true);
    expect(error.backendFault).toBe(true);
    const client = new AttemptError('upstream-status', gatewayError('SWY_ERR_UPSTREAM_REJECTED'), { upstreamStatus: 422 });
    expect(client.retryable).toBe(false);
    expect(client.backendFault).toBe(false);
  });
});
