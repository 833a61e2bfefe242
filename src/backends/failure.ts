/**
 * How an upstream attempt failed, and the one decision about it: may another
 * backend be tried (`retryable`), and did the backend misbehave
 * (`backendFault`, which counts against its circuit) or did the client cause
 * it. Decided once, when the AttemptError is made; the relays, the attempt
 * loop and the circuit read the fields and never re-derive them.
 */
import type { GatewayError } from '../errors.ts';

/** Why an attempt failed. */
export type FailureKind =
  | 'connect-error'
  | 'connection-reset'
  | 'first-byte-timeout'
  | 'idle-timeout'
  | 'total-timeout'
  /** The backend answered an error (HTTP status, or an error event inside a stream). */
  | 'upstream-status'
  /** The backend answered 200 with something that is not the protocol (a body that is not JSON). */
  | 'invalid-answer'
  /** The backend's answer (or one event of its stream) outgrew backends[].maxAnswerBytes / maxEventBytes. */
  | 'answer-too-large'
  | 'stream-interrupted'
  | 'client-closed'
  /** The gateway ended the request itself (shutdown past its grace period). */
  | 'gateway-stopped'
  /** The client stopped reading for longer than the idle limit while the upstream waited for it. */
  | 'client-stalled';

/** The decision about one failed attempt. */
export interface FailureVerdict {
  /** Another backend may do better: fail over (only before anything reached the client). */
  retryable: boolean;
  /** The backend misbehaved (counts against its circuit); false when the client caused it. */
  backendFault: boolean;
}

const backendFailure: FailureVerdict = Object.freeze({ retryable: true, backendFault: true });
const backendFailureFinal: FailureVerdict = Object.freeze({ retryable: false, backendFault: true });
const clientFailure: FailureVerdict = Object.freeze({ retryable: false, backendFault: false });

/**
 * The decision table. `status` is what the backend answered (HTTP status, or
 * an in-stream error event's code) once upstream-error.ts has classified it by
 * cause.
 *
 * | kind | status | retryable | backendFault |
 * | connect-error, connection-reset, first-byte-timeout, stream-interrupted, invalid-answer | | yes | yes |
 * | idle-timeout, total-timeout (the generation ran long: another backend would start over) | | no | yes |
 * | answer-too-large (over backends[].maxAnswerBytes or maxEventBytes: the same request would be as large elsewhere) | | no | yes |
 * | client-closed, client-stalled, gateway-stopped | | no | no |
 * | upstream-status | 401, 403 (the gateway's credentials), 404 (model not served), 408, 429, 5xx, none | yes | yes |
 * | upstream-status | any other 4xx (the request itself is wrong: every backend would refuse it) | no | no |
 */
export function judgeFailure(kind: FailureKind, status: number | undefined): FailureVerdict {
  switch (kind) {
    case 'client-closed':
    case 'gateway-stopped':
    case 'client-stalled':
      return clientFailure;
    case 'idle-timeout':
    case 'total-timeout':
    case 'answer-too-large':
      return backendFailureFinal;
    case 'upstream-status':
      if (status === undefined || status >= 500 || status < 400) return backendFailure;
      if (status === 401 || status === 403 || status === 404 || status === 408 || status === 429) return backendFailure;
      return clientFailure;
    default:
      return backendFailure;
  }
}

/** A failed attempt, carrying the error the client would see and the verdict on it. */
export class AttemptError extends Error {
  readonly kind: FailureKind;
  readonly retryable: boolean;
  readonly backendFault: boolean;
  readonly clientError: GatewayError;
  readonly upstreamStatus: number | undefined;
  readonly retryAfter: string | undefined;
  /** What the upstream said, secrets redacted and bounded: for the operator's debug log, never the client. */
  readonly detail: string | undefined;
  constructor(kind: FailureKind, clientError: GatewayError, options: { upstreamStatus?: number; retryAfter?: string; detail?: string } = {}) {
    super(`${kind}: ${clientError.message}`);
    this.name = 'AttemptError';
    this.kind = kind;
    this.clientError = clientError;
    this.upstreamStatus = options.upstreamStatus;
    this.retryAfter = options.retryAfter;
    this.detail = options.detail;
    const verdict = judgeFailure(kind, options.upstreamStatus);
    this.retryable = verdict.retryable;
    this.backendFault = verdict.backendFault;
  }
}
