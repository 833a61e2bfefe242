/**
 * Circuit breaker per backend: opens after consecutive failures or a high
 * error rate over recent attempts, stays open for a cooldown, then lets one
 * probe request through (half-open); its outcome closes or reopens it.
 */

/** Circuit-breaker state of a backend. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** Breaker settings (`backends[].circuit`). */
export interface CircuitSettings {
  consecutiveFailures: number;
  errorRate: number;
  minRequests: number;
  windowSize: number;
  cooldownMs: number;
}

export class CircuitBreaker {
  state: CircuitState = 'closed';
  openedAt = 0;
  opens = 0;
  private consecutive = 0;
  private probeInFlight = false;
  private readonly outcomes: boolean[] = [];
  private failures = 0;
  private settings: CircuitSettings;
  private readonly now: () => number;

  constructor(settings: CircuitSettings, now: () => number = Date.now) {
    this.settings = settings;
    this.now = now;
  }

  /** New settings from a config reload; the state (open, closed, the recent outcomes) stays. */
  reconfigure(settings: CircuitSettings): void {
    this.settings = settings;
  }

  /** May a request go to this backend now? In half-open state only one probe at a time. */
  allows(): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') {
      if (this.now() - this.openedAt < this.settings.cooldownMs) return false;
      this.state = 'half-open';
    }
    return !this.probeInFlight;
  }

  /** Call when an attempt is sent; marks the half-open probe. */
  onAttempt(): void {
    if (this.state === 'half-open') this.probeInFlight = true;
  }

  private record(ok: boolean): void {
    this.outcomes.push(ok);
    if (!ok) this.failures++;
    if (this.outcomes.length > this.settings.windowSize && this.outcomes.shift() === false) this.failures--;
  }

  onSuccess(): void {
    this.consecutive = 0;
    this.record(true);
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.probeInFlight = false;
      this.outcomes.length = 0;
      this.failures = 0;
    }
  }

  onFailure(): void {
    this.consecutive++;
    this.record(false);
    if (this.state === 'half-open') {
      this.trip();
      return;
    }
    const rateTripped = this.outcomes.length >= this.settings.minRequests && this.failures / this.outcomes.length >= this.settings.errorRate;
    if (this.state === 'closed' && (this.consecutive >= this.settings.consecutiveFailures || rateTripped)) this.trip();
  }

  /** Forgets a probe that ended without a verdict (e.g. the client left). */
  onAbandon(): void {
    this.probeInFlight = false;
  }

  private trip(): void {
    this.state = 'open';
    this.openedAt = this.now();
    this.opens++;
    this.probeInFlight = false;
  }
}
