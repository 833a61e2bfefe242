/** Budgets in process memory (one replica; no Redis). */
import type { BudgetDecision, BudgetStore, BudgetSubject } from './budget.ts';
import { currentPeriod, isExhausted } from './budget.ts';

/** In-memory budget counters, one per subject and period. */
export class MemoryBudgetStore implements BudgetStore {
  private readonly counters = new Map<string, { spent: number; endsAt: number }>();
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
  }

  private slot(subject: BudgetSubject, now: number): { key: string; endsAt: number } {
    const { tag, endsAt } = currentPeriod(subject.budget.period, now);
    return { key: `${subject.scope}\u0000${subject.id}\u0000${tag}`, endsAt };
  }

  async spent(subject: BudgetSubject): Promise<number> {
    const now = this.now();
    const counter = this.counters.get(this.slot(subject, now).key);
    return counter && counter.endsAt > now ? counter.spent : 0;
  }

  async check(subjects: readonly BudgetSubject[]): Promise<BudgetDecision> {
    const now = this.now();
    for (const subject of subjects) {
      const spent = await this.spent(subject);
      if (isExhausted(spent, subject.budget)) {
        return { allowed: false, exhausted: { subject, spent, resetMs: currentPeriod(subject.budget.period, now).endsAt - now }, degraded: false };
      }
    }
    return { allowed: true, exhausted: undefined, degraded: false };
  }

  async charge(subjects: readonly BudgetSubject[], cost: number): Promise<void> {
    if (!(cost > 0)) return;
    const now = this.now();
    for (const [key, counter] of this.counters) if (counter.endsAt <= now) this.counters.delete(key);
    for (const subject of subjects) {
      const { key, endsAt } = this.slot(subject, now);
      const counter = this.counters.get(key) ?? { spent: 0, endsAt };
      counter.spent += cost;
      this.counters.set(key, counter);
    }
  }
}
