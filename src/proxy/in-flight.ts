/**
 * The requests being forwarded right now, so a shutdown past its grace period
 * can end each one properly (a stream gets an OpenAI-shaped error event, a
 * request still waiting gets the error answer) instead of a bare socket close,
 * and every one of them still settles its usage.
 */
import type { ClientLink } from '../backends/attempt.ts';
import { Bag } from '../bag.ts';
import type { GatewayError } from '../errors.ts';

/** Requests in flight, by their client link (added when forwarding starts, gone when the response closes). */
export class InFlight {
  private readonly links = new Bag<ClientLink>();

  get size(): number {
    return this.links.size;
  }

  add(link: ClientLink): void {
    this.links.add(link);
  }

  delete(link: ClientLink): void {
    this.links.delete(link);
  }

  /** Ends every request in flight with `error`; returns how many. */
  stopAll(error: GatewayError): number {
    const count = this.links.size;
    for (const link of this.links.toArray()) link.stop(error);
    return count;
  }
}
