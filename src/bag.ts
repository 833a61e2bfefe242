/**
 * An unordered collection with O(1) add and delete for objects that are in one
 * bag at a time (each member keeps its own slot). Used instead of a `Set` for
 * members that come and go with every request: when a Set's table fills with
 * deleted entries V8 rehashes it into a new table and the old one keeps a
 * pointer to its successor (for live iterators). Once an old table has been
 * promoted, that chain of dead tables — and every member they still hold,
 * with all a request references — survives each scavenge until the next full
 * GC. Under load that turned 1 ms scavenges into 7–18 ms ones. A plain array
 * with swap-remove leaves no such chain.
 */

/** What a bag member carries: its index in the bag, -1 when in none. */
export interface BagMember {
  bagSlot: number;
}

export class Bag<T extends BagMember> implements Iterable<T> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  add(item: T): void {
    if (item.bagSlot >= 0) return;
    item.bagSlot = this.#items.length;
    this.#items.push(item);
  }

  delete(item: T): boolean {
    const slot = item.bagSlot;
    const items = this.#items;
    if (slot < 0 || items[slot] !== item) return false;
    const last = items.pop() as T;
    if (last !== item) {
      items[slot] = last;
      last.bagSlot = slot;
    }
    item.bagSlot = -1;
    return true;
  }

  [Symbol.iterator](): Iterator<T> {
    return this.#items[Symbol.iterator]();
  }

  /** The members now, as a copy (safe to change the bag while walking it). */
  toArray(): T[] {
    return this.#items.slice();
  }
}
