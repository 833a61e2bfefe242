import { describe, expect, it } from 'vitest';
import { Bag, type BagMember } from '../../src/bag.ts';

interface Item extends BagMember {
  name: string;
}

const item = (name: string): Item => ({ name, bagSlot: -1 });

describe('Bag', () => {
  it('adds, deletes from any position and iterates what is left', () => {
    const bag = new Bag<Item>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(item) as [Item, Item, Item, Item];
    for (const member of [a, b, c, d]) bag.add(member);
    bag.add(b); // twice: still once
    expect(bag.size).toBe(4);
    expect(bag.delete(b)).toBe(true);
    expect(bag.delete(b)).toBe(false);
    expect([...bag]).not.toContain(b);
    expect([...bag].map((member) => member.name).sort()).toEqual(['a', 'c', 'd']);
    expect(bag.delete(d)).toBe(true); // the last one
    expect(bag.delete(a)).toBe(true); // the first one
    expect([...bag]).toEqual([c]);
    expect([...bag]).toContain(c);
    expect(c.bagSlot).toBe(0);
  });

  it('refuses a member of another bag it does not hold, and is safe to change while walking a copy', () => {
    const one = new Bag<Item>();
    const two = new Bag<Item>();
    const x = item('x');
    const y = item('y');
    one.add(x);
    two.add(y);
    expect(two.delete(x)).toBe(false);
    expect(one.size).toBe(1);
    for (const member of one.toArray()) one.delete(member);
    expect(one.size).toBe(0);
    expect(x.bagSlot).toBe(-1);
  });

  it('keeps every member exactly once under random churn', () => {
    const bag = new Bag<Item>();
    const live = new Set<Item>();
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const pool = Array.from({ length: 50 }, (_, index) => item(String(index)));
    for (let step = 0; step < 5_000; step++) {
      const member = pool[Math.floor(random() * pool.length)] as Item;
      if (random() < 0.5) {
        bag.add(member);
        live.add(member);
      } else {
        expect(bag.delete(member)).toBe(live.delete(member));
      }
      expect(bag.size).toBe(live.size);
    }
    expect(new Set(bag)).toEqual(live);
  });
});
