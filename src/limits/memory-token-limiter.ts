/** Tokens per minute in process memory (one replica; no Redis). */
import type { BucketCounts, Reservation, TokenDecision, TokenLimiter } from './token-window.ts';
import { decision, fits, tokenWindowMs, windowPosition } from './token-window.ts';

interface State extends BucketCounts {
  bucket: number;
}

/** In-memory sliding-window token limiter. */
export class MemoryTokenLimiter implements TokenLimiter {
  private readonly states = new Map<string, State>();
  private readonly now: () => number;
  private readonly windowMs: number;

  constructor(options: { now?: () => number; windowMs?: number } = {}) {
    this.now = options.now ?? Date.now;
    this.windowMs = options.windowMs ?? tokenWindowMs;
  }

  private state(subject: string, bucket: number): State {
    let state = this.states.get(subject);
    if (!state) {
      state = { bucket, current: 0, previous: 0 };
      this.states.set(subject, state);
    } else if (state.bucket !== bucket) {
      state.previous = state.bucket === bucket - 1 ? state.current : 0;
      state.current = 0;
      state.bucket = bucket;
    }
    return state;
  }

  async reserve(subject: string, limit: number, tokens: number): Promise<TokenDecision> {
    const { bucket, elapsed } = windowPosition(this.now(), this.windowMs);
    const state = this.state(subject, bucket);
    const allowed = fits(state, elapsed, limit, tokens, this.windowMs);
    if (allowed && tokens > 0) state.current += tokens;
    return decision(subject, bucket, elapsed, limit, tokens, allowed, state, this.windowMs);
  }

  async settle(reservation: Reservation | undefined, actualTokens: number): Promise<void> {
    if (!reservation || reservation.settled) return;
    reservation.settled = true;
    const delta = Math.max(0, Math.round(actualTokens)) - reservation.tokens;
    if (delta === 0) return;
    const { bucket } = windowPosition(this.now(), this.windowMs);
    const state = this.state(reservation.subject, bucket);
    if (reservation.bucket === bucket) state.current = Math.max(0, state.current + delta);
    else if (reservation.bucket === bucket - 1) state.previous = Math.max(0, state.previous + delta);
    else if (delta > 0) state.current += delta;
  }
}
