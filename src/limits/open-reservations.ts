/**
 * Requests that hold token or budget reservations not settled yet. Shutdown
 * waits for them (each request settles when it ends, also when shutdown cut
 * it short) before it closes Redis: a reservation settled against a closed
 * connection would stay held, and the usage would never be charged.
 */

/** A count of open reservations with a wait for none. */
export class OpenReservations {
  private open = 0;
  private waiters: Array<() => void> = [];

  /** Reservations not settled yet. */
  get size(): number {
    return this.open;
  }

  /** A request starts reserving. */
  add(): void {
    this.open++;
  }

  /** A request settled (or released) what it held. Call once per add. */
  done(): void {
    this.open = Math.max(0, this.open - 1);
    if (this.open === 0) for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves once none is open, or after `timeoutMs`; returns how many are still open. */
  async drained(timeoutMs: number): Promise<number> {
    if (this.open === 0) return 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, timeoutMs);
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(finish);
    });
    return this.open;
  }
}

/** How long shutdown waits for open reservations to settle: a settle is at most two Redis round trips. */
export function settleWaitMs(redis: { commandTimeoutMs: number } | undefined): number {
  return Math.max(2_000, 3 * (redis?.commandTimeoutMs ?? 0));
}
