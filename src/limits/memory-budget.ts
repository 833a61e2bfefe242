/** Budgets in process memory (one replica; no Redis): the same reserve/settle semantics as the Redis store. */
import { randomUUID } from 'node:crypto';
import type { BudgetDecision, BudgetReservation, BudgetStore, BudgetSubject } from './budget.ts';
import { currentPeriod, hasNoRoom } from './budget.ts';

interface Counter {
  spent: number;
  held: number;
  endsAt: number;
}

/** In-memory budget counters, one per subject and period. */
export class MemoryBudgetStore implements BudgetStore {
  private readonly counters = new Map<string, Counter>();
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
  }

  private slotKey(subject: BudgetSubject, tag: string): string {
    return `${subject.scope}\u0000${subject.id}\u0000${tag}`;
  }

  /** The subject's counter in the current period (created, and ended periods dropped, when `create`). */
  private counter(subject: BudgetSubject, now: number, create: boolean): Counter | undefined {
    const { tag, endsAt } = currentPeriod(subject.budget.period, now);
    const key = this.slotKey(subject, tag);
    let counter = this.counters.get(key);
    if (!counter && create) {
      for (const [old, value] of this.counters) if (value.endsAt <= now) this.counters.delete(old);
      counter = { spent: 0, held: 0, endsAt };
      this.counters.set(key, counter);
    }
    return counter;
  }

  async spent(subject: BudgetSubject): Promise<number> {
    return this.counter(subject, this.now(), false)?.spent ?? 0;
  }

  async held(subject: BudgetSubject): Promise<number> {
    return this.counter(subject, this.now(), false)?.held ?? 0;
  }

  /** No lease here: holds die with the process that took them. */
  async reserve(subjects: readonly BudgetSubject[], worstCase: number, _leaseMs?: number): Promise<BudgetDecision> {
    if (subjects.length === 0) return { allowed: true, exhausted: undefined, reservation: undefined, degraded: false };
    const now = this.now();
    const counters: Counter[] = [];
    for (const subject of subjects) {
      const counter = this.counter(subject, now, true) as Counter;
      if (hasNoRoom(counter.spent, counter.held, subject.budget)) {
        const resetMs = counter.endsAt - now;
        return { allowed: false, exhausted: { subject, spent: counter.spent, held: counter.held, resetMs }, reservation: undefined, degraded: false };
      }
      counters.push(counter);
    }
    const amount = Math.max(0, worstCase);
    for (const counter of counters) counter.held += amount;
    const reservation: BudgetReservation = {
      subjects,
      amount,
      tags: subjects.map((subject) => currentPeriod(subject.budget.period, now).tag),
      id: randomUUID(),
      held: true,
      settled: false,
    };
    return { allowed: true, exhausted: undefined, reservation, degraded: false };
  }

  async settle(reservation: BudgetReservation | undefined, cost: number): Promise<void> {
    if (!reservation || reservation.settled) return;
    reservation.settled = true;
    if (reservation.held && reservation.amount > 0) {
      reservation.subjects.forEach((subject, index) => {
        const counter = this.counters.get(this.slotKey(subject, reservation.tags[index] ?? ''));
        if (counter) counter.held = counter.held - reservation.amount > 1e-12 ? counter.held - reservation.amount : 0;
      });
    }
    await this.charge(reservation.subjects, cost);
  }

  async charge(subjects: readonly BudgetSubject[], cost: number): Promise<void> {
    if (!(cost > 0)) return;
    const now = this.now();
    for (const subject of subjects) (this.counter(subject, now, true) as Counter).spent += cost;
  }
}
