import { describe, expect, it } from 'vitest';
import {
  embeddingToBase64,
  estimateTextTokens,
  generateEmbedding,
  generateTokens,
  generateToolArguments,
  hashString,
  IdSource,
  splitArguments,
} from '../../../src/sim/generate.ts';

describe('deterministic generation', () => {
  it('produces the same tokens for the same seed, one word per token', () => {
    const first = generateTokens(42, 10);
    expect(generateTokens(42, 10)).toEqual(first);
    expect(generateTokens(43, 10)).not.toEqual(first);
    expect(first[0]).not.toMatch(/^ /);
    expect(first.slice(1).every((token) => /^ \S+$/.test(token))).toBe(true);
  });

  it('hashes chainably and estimates about four characters per token', () => {
    expect(hashString('ab')).toBe(hashString('b', hashString('a')));
    expect(hashString('a')).not.toBe(hashString('b'));
    expect(estimateTextTokens('')).toBe(0);
    expect(estimateTextTokens('abcde')).toBe(2);
  });

  it('fills tool arguments from the JSON schema', () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' }, metric: { type: 'boolean' }, unit: { enum: ['c', 'f'] } },
    };
    const args = JSON.parse(generateToolArguments(schema, 1)) as Record<string, unknown>;
    expect(typeof args.city).toBe('string');
    expect(Number.isInteger(args.days)).toBe(true);
    expect(typeof args.metric).toBe('boolean');
    expect(['c', 'f']).toContain(args.unit);
    expect(generateToolArguments(undefined, 1)).toBe('{}');
    expect(splitArguments('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
  });

  it('makes unit-length float32 embeddings whose base64 is little-endian float32', () => {
    const vector = generateEmbedding(5, 8);
    expect(Math.hypot(...vector)).toBeCloseTo(1, 6);
    expect(vector.every((value) => Math.fround(value) === value)).toBe(true);
    const bytes = Buffer.from(embeddingToBase64(vector), 'base64');
    const decoded = Array.from({ length: 8 }, (_, index) => bytes.readFloatLE(index * 4));
    expect(decoded).toEqual(vector);
  });

  it('hands out distinct ids of the runtimes lengths', () => {
    const ids = new IdSource(0);
    const hex = ids.hex();
    expect(hex).toMatch(/^[0-9a-f]{32}$/);
    expect(ids.hex()).not.toBe(hex);
    expect(ids.alnum()).toMatch(/^[0-9A-Za-z]{32}$/);
  });
});
