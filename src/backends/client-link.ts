/**
 * The client's side of a request as the upstream attempt sees it: whether it
 * left or the gateway stopped it, and which attempt its departure aborts.
 * Separate from attempt.ts because it outlives the attempts (one link per
 * request, bound to each attempt in turn) and the requests in flight hold it
 * (proxy/in-flight.ts) without needing the dispatch handler.
 */
import type { GatewayError } from '../errors.ts';

/** Something the client's departure aborts. */
export interface Abortable {
  abort(): void;
}

/** What classifying a failure needs to know about the client. */
export interface ClientState {
  /** The client went away. */
  readonly left: boolean;
  /** The gateway ended the request itself (shutdown): the error the client gets. */
  readonly stoppedWith?: GatewayError | undefined;
}

/**
 * The client's side of a request. When the client leaves, the attempt in
 * flight is aborted directly, without adding and removing an event listener
 * on every attempt; an AbortSignal is made only for code that waits on one.
 */
export class ClientLink implements ClientState {
  left = false;
  /** Its place in the requests in flight (proxy/in-flight.ts). */
  bagSlot = -1;
  stoppedWith: GatewayError | undefined;
  private controller: AbortController | undefined;
  private attempt: Abortable | undefined;

  /** Aborts when the client leaves (made on first use: most requests never need it). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.left || this.stoppedWith) this.controller.abort();
    }
    return this.controller.signal;
  }

  /** The client went away: abort everything done on its behalf. */
  leave(): void {
    if (this.left) return;
    this.left = true;
    this.controller?.abort();
    this.attempt?.abort();
  }

  /**
   * The gateway ends the request (shutdown past its grace period): aborts what runs on its behalf like a
   * departure, but the client is still there and gets `error` (an SSE error event, or the error answer).
   */
  stop(error: GatewayError): void {
    if (this.left || this.stoppedWith) return;
    this.stoppedWith = error;
    this.controller?.abort();
    this.attempt?.abort();
  }

  /** Makes `attempt` the one a departure aborts (aborting it at once if the client already left). */
  bind(attempt: Abortable): void {
    this.attempt = attempt;
    if (this.left || this.stoppedWith) attempt.abort();
  }
}
