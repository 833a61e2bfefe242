import { describe, expect, it } from 'vitest';
import { entryAgeSeconds, entryFromResponse, parseEntry, serialiseEntry } from '../../../src/cache/entry.ts';
import { MemoryCacheStore } from '../../../src/cache/memory-store.ts';

const answer = (text: string) =>
  JSON.stringify({
    id: 'x',
    object: 'chat.completion',
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content: text } }],
    usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
  });

describe('cache entries', () => {
  it('take usage from the body and round-trip through serialisation', () => {
    const entry = entryFromResponse('chat', answer('hi'), undefined, 1_000);
    expect(entry.usage).toEqual({ prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
    expect(parseEntry(serialiseEntry(entry))).toEqual(entry);
    expect(parseEntry('{"v":2}')).toBeUndefined();
    expect(parseEntry('not json')).toBeUndefined();
    expect(entryAgeSeconds(entry, 4_500)).toBe(3);
  });
});

describe('MemoryCacheStore', () => {
  it('gets what was set until the TTL passes', async () => {
    let now = 0;
    const store = new MemoryCacheStore({ maxEntries: 10, maxBytes: 1e6, maxEntryBytes: 1e5, now: () => now });
    const entry = entryFromResponse('chat', answer('hi'), undefined, 0);
    expect(await store.set('k', entry, 10)).toBe(true);
    expect(await store.get('k')).toEqual(entry);
    now = 9_999;
    expect(await store.get('k')).toBeDefined();
    now = 10_000;
    expect(await store.get('k')).toBeUndefined();
    expect(store.size.entries).toBe(0);
  });

  it('evicts the least recently used entry beyond maxEntries', async () => {
    const store = new MemoryCacheStore({ maxEntries: 2, maxBytes: 1e6, maxEntryBytes: 1e5 });
    await store.set('a', entryFromResponse('chat', answer('a')), 60);
    await store.set('b', entryFromResponse('chat', answer('b')), 60);
    await store.get('a'); // a is now the most recent
    await store.set('c', entryFromResponse('chat', answer('c')), 60);
    expect(await store.get('a')).toBeDefined();
    expect(await store.get('b')).toBeUndefined();
    expect(await store.get('c')).toBeDefined();
  });

  it('keeps exact LRU order through long churn (reads, rewrites, expiries), against a reference model', async () => {
    let now = 0;
    const max = 7;
    const store = new MemoryCacheStore({ maxEntries: max, maxBytes: 1e9, maxEntryBytes: 1e6, now: () => now });
    const reference: string[] = []; // least recent first
    const touch = (key: string) => {
      const at = reference.indexOf(key);
      if (at >= 0) reference.splice(at, 1);
      reference.push(key);
    };
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let step = 0; step < 5_000; step++) {
      const key = `k${Math.floor(random() * 20)}`;
      if (random() < 0.6) {
        await store.set(key, entryFromResponse('chat', answer(key), undefined, 0), 3_600);
        touch(key);
        while (reference.length > max) reference.shift();
      } else if (await store.get(key)) touch(key);
      else expect(reference).not.toContain(key);
      if (step === 2_500) {
        now += 3_601_000; // everything expires; reads then drop entries one by one
        for (const stale of [...reference]) expect(await store.get(stale)).toBeUndefined();
        reference.length = 0;
      }
      expect(store.size.entries).toBe(reference.length);
    }
    for (const key of reference) expect(await store.get(key)).toBeDefined();
  });

  it('evicts by bytes and refuses entries above maxEntryBytes', async () => {
    const store = new MemoryCacheStore({ maxEntries: 100, maxBytes: 2_000, maxEntryBytes: 1_500 });
    expect(await store.set('big', entryFromResponse('chat', answer('x'.repeat(2_000))), 60)).toBe(false);
    expect(await store.get('big')).toBeUndefined();
    for (const key of ['a', 'b', 'c', 'd']) await store.set(key, entryFromResponse('chat', answer(key.repeat(500))), 60);
    expect(store.size.bytes).toBeLessThanOrEqual(2_000);
    expect(await store.get('d')).toBeDefined();
    expect(await store.get('a')).toBeUndefined();
  });
});
