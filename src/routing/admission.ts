/**
 * Admission control per backend: at most `maxConcurrency` requests in flight
 * from this gateway, a bounded queue beyond that, served by priority (high,
 * normal, low; FIFO within one). When the queue is full the lowest priority
 * is shed first with 429 and retry-after — never silently dropped.
 *
 * With shared slots (cluster mode) a slot also needs a lease in Redis, so `maxConcurrency` holds across every
 * replica (see cluster/slots.ts); the queue stays this replica's. A freed slot goes to this replica's next waiter
 * with its lease (no round trip); waiters retry Redis when another replica frees a slot of a full backend
 * (pub/sub) and at least every `cluster.pollMs` (a dead replica's leases expire without a message).
 */
import type { Backend } from '../backends/registry.ts';
import type { SharedSlots } from '../cluster/slots.ts';
import { gatewayError, type GatewayError } from '../errors.ts';

/** Request priority from `x-switchyard-priority`. */
export type Priority = 'high' | 'normal' | 'low';

const rank: Record<Priority, number> = { high: 0, normal: 1, low: 2 };

/** Reads the priority header; anything else is `normal`. */
export function priorityOf(header: string | string[] | undefined): Priority {
  return header === 'high' || header === 'low' ? header : 'normal';
}

interface Waiter {
  priority: Priority;
  grant: () => void;
  reject: (error: GatewayError) => void;
}

function overloaded(backend: Backend, why: string): GatewayError {
  return gatewayError('SWY_ERR_OVERLOADED', {
    message: `Backend ${backend.id} is at capacity (${why}). Retry after the time in retry-after.`,
    retryAfterSeconds: 1,
  });
}

/** The slots and wait queue of one backend. */
export class Admission {
  private readonly queues: [Waiter[], Waiter[], Waiter[]] = [[], [], []];
  private readonly backend: Backend;
  /** Requests shed or timed out in the queue, by priority (for metrics). */
  readonly shed: Record<Priority, number> = { high: 0, normal: 0, low: 0 };

  private readonly shared: SharedSlots | undefined;
  private readonly pollMs: number;
  /** Slots held without a lease (taken while Redis was unreachable); freed first. */
  private unleased = 0;
  private retrying = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(backend: Backend, shared?: SharedSlots, pollMs = 50) {
    this.backend = backend;
    this.shared = shared;
    this.pollMs = pollMs;
  }

  get waiting(): number {
    return this.queues[0].length + this.queues[1].length + this.queues[2].length;
  }

  /** Takes a slot if one is free right now. */
  tryAcquire(): boolean {
    return this.waiting === 0 && this.backend.takeSlot();
  }

  /** Shared slots: a local slot and a lease (one round trip); a local slot alone while Redis is unreachable. */
  async tryAcquireShared(): Promise<boolean> {
    if (!this.tryAcquire()) return false;
    return this.lease();
  }

  /** With a local slot taken: its lease. False (slot given back) when the backend is full fleet-wide. */
  private async lease(): Promise<boolean> {
    const grant = await (this.shared as SharedSlots).acquire(this.backend.id);
    if (grant === 'full') {
      this.backend.freeSlot();
      return false;
    }
    if (grant === 'local') this.unleased++;
    return true;
  }

  /** Shared slots: waits for a slot (queued here while the fleet has none free). */
  async acquireShared(priority: Priority, signal: AbortSignal, tryFirst = true): Promise<void> {
    if (tryFirst && (await this.tryAcquireShared())) return;
    const waiting = this.enqueue(priority, signal);
    this.scheduleRetry();
    return waiting;
  }

  /** Another replica freed a slot here, or the poll came round: the queue's head tries for a lease. */
  retry(): void {
    if (this.retrying || this.waiting === 0) return;
    this.retrying = true;
    void this.retryLoop().finally(() => {
      this.retrying = false;
      this.scheduleRetry();
    });
  }

  private async retryLoop(): Promise<void> {
    while (this.waiting > 0 && this.backend.takeSlot()) {
      if (!(await this.lease())) return;
      const next = this.queues[0][0] ?? this.queues[1][0] ?? this.queues[2][0];
      if (next) next.grant();
      else this.release(); // the waiter left meanwhile
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.waiting === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retry();
    }, this.pollMs);
  }

  /** Waits for a slot; rejects with 429 when shed, on queue timeout, or when the client leaves. */
  acquire(priority: Priority, signal: AbortSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return this.enqueue(priority, signal);
  }

  private enqueue(priority: Priority, signal: AbortSignal): Promise<void> {
    const { maxSize, timeoutMs } = this.backend.config.queue;
    if (this.waiting >= maxSize) {
      const victim = this.lowestBelow(priority);
      if (!victim) {
        this.shed[priority]++;
        return Promise.reject(overloaded(this.backend, `queue of ${maxSize} full`));
      }
      this.shed[victim.priority]++;
      victim.reject(overloaded(this.backend, `shed for a ${priority}-priority request`));
    }
    return new Promise<void>((resolve, reject) => {
      const queue = this.queues[rank[priority] as 0 | 1 | 2];
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const index = queue.indexOf(waiter);
        if (index !== -1) queue.splice(index, 1);
      };
      const waiter: Waiter = {
        priority,
        grant: () => {
          cleanup();
          resolve();
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      };
      const onAbort = () => waiter.reject(gatewayError('SWY_ERR_INTERNAL', { message: 'client closed the request while queued' }));
      const timer = setTimeout(() => {
        this.shed[priority]++;
        waiter.reject(overloaded(this.backend, `waited ${timeoutMs} ms in the queue`));
      }, timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
    });
  }

  /** Returns a slot; hands it to the best waiter, if any. */
  release(): void {
    const next = this.queues[0][0] ?? this.queues[1][0] ?? this.queues[2][0];
    if (next && this.backend.inflight <= this.backend.config.maxConcurrency) {
      next.grant(); // the slot passes over without being freed (with its lease, when shared)
      return;
    }
    this.backend.freeSlot();
    if (this.shared === undefined) return;
    if (this.unleased > 0) this.unleased--;
    else this.shared.release(this.backend.id);
  }

  private lowestBelow(priority: Priority): Waiter | undefined {
    for (let level = 2; level > rank[priority]; level--) {
      const queue = this.queues[level as 0 | 1 | 2];
      if (queue.length > 0) return queue[queue.length - 1];
    }
    return undefined;
  }
}
