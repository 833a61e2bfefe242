// Slots and the FIFO queue in front of them. Neither runtime sheds load: requests
// beyond the slots wait (vLLM "waiting", llama.cpp "deferred") until one frees.
// Cancelling a queued request is O(1): it is flagged and skipped when reached.

export interface SlotWaiter {
  /** Called once with the slot id when the request may run. */
  grant(slotId: number): void;
  /** Set by the scheduler while the waiter sits in the queue. */
  queued: boolean;
}

export class SlotScheduler {
  private limit: number;
  private readonly busy: boolean[] = [];
  private free: number[] = [];
  private queue: (SlotWaiter | undefined)[] = [];
  private head = 0;
  running = 0;
  waiting = 0;
  /** The longest the queue has been. */
  peakWaiting = 0;
  /** The most requests held at once, running and waiting (what a gateway's concurrency limit bounds). */
  peakHeld = 0;

  constructor(limit: number) {
    this.limit = limit;
    this.rebuildFree();
  }

  get capacity(): number {
    return this.limit;
  }

  isBusy(slotId: number): boolean {
    return this.busy[slotId] === true;
  }

  /** Grants at once (synchronously) when a slot is free, else queues. */
  acquire(waiter: SlotWaiter): void {
    if (this.running + this.waiting + 1 > this.peakHeld) this.peakHeld = this.running + this.waiting + 1;
    const slotId = this.free.pop();
    if (slotId !== undefined) {
      this.take(slotId, waiter);
      return;
    }
    waiter.queued = true;
    this.waiting++;
    if (this.waiting > this.peakWaiting) this.peakWaiting = this.waiting;
    this.queue.push(waiter);
  }

  /** Removes a queued waiter; a no-op for one that was already granted. */
  cancel(waiter: SlotWaiter): void {
    if (!waiter.queued) return;
    waiter.queued = false;
    // The entry stays in the array; next() skips waiters that are no longer queued.
    this.waiting--;
  }

  release(slotId: number): void {
    if (!this.busy[slotId]) return;
    this.busy[slotId] = false;
    this.running--;
    if (slotId < this.limit) this.free.push(slotId);
    this.drain();
  }

  /** Live change of the number of slots; running requests above the new limit finish normally. */
  resize(limit: number): void {
    this.limit = limit;
    this.rebuildFree();
    this.drain();
  }

  private take(slotId: number, waiter: SlotWaiter): void {
    this.busy[slotId] = true;
    this.running++;
    waiter.queued = false;
    waiter.grant(slotId);
  }

  private drain(): void {
    while (this.free.length > 0) {
      const waiter = this.next();
      if (waiter === undefined) return;
      this.waiting--;
      const slotId = this.free.pop();
      if (slotId === undefined) return;
      this.take(slotId, waiter);
    }
  }

  private next(): SlotWaiter | undefined {
    while (this.head < this.queue.length) {
      const waiter = this.queue[this.head];
      this.queue[this.head] = undefined;
      this.head++;
      if (waiter?.queued) {
        this.compact();
        return waiter;
      }
    }
    this.compact();
    return undefined;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    } else if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
  }

  private rebuildFree(): void {
    const free: number[] = [];
    // Lowest ids on top of the stack, so slot 0 is used first like llama.cpp does.
    for (let id = this.limit - 1; id >= 0; id--) if (!this.busy[id]) free.push(id);
    this.free = free;
  }
}
