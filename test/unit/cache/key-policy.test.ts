import { describe, expect, it } from 'vitest';
import { cacheKey, normaliseRequest } from '../../../src/cache/key.ts';
import { cacheDirective, isCacheable, resolveCacheMode } from '../../../src/cache/policy.ts';

const body = { model: 'm', messages: [{ role: 'user', content: 'secret prompt' }], temperature: 0, max_tokens: 10 };

describe('cache key derivation', () => {
  it('is a hex SHA-256 without any prompt text', () => {
    const key = cacheKey('tenant-a', 'm', 'chat', body);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(key).not.toContain('secret');
  });

  it('ignores key order at every depth, stream flags, user and model', () => {
    const reordered = {
      max_tokens: 10,
      temperature: 0,
      messages: [{ content: 'secret prompt', role: 'user' }],
      stream: true,
      stream_options: { include_usage: true },
      user: 'someone',
      model: 'alias-of-m',
    };
    expect(cacheKey('t', 'm', 'chat', reordered)).toBe(cacheKey('t', 'm', 'chat', body));
    expect(normaliseRequest(reordered)).toBe('{"max_tokens":10,"messages":[{"content":"secret prompt","role":"user"}],"temperature":0}');
  });

  it('changes with anything that changes the answer', () => {
    const base = cacheKey('t', 'm', 'chat', body);
    expect(cacheKey('t', 'm', 'chat', { ...body, max_tokens: 11 })).not.toBe(base);
    expect(cacheKey('t', 'm', 'chat', { ...body, seed: 1 })).not.toBe(base);
    expect(cacheKey('t', 'm', 'chat', { ...body, tools: [{ type: 'function', function: { name: 'f' } }] })).not.toBe(base);
    expect(cacheKey('t', 'm', 'chat', { ...body, messages: [{ role: 'user', content: 'other' }] })).not.toBe(base);
    expect(cacheKey('t', 'other-model', 'chat', body)).not.toBe(base);
    expect(cacheKey('t', 'm', 'completion', body)).not.toBe(base);
  });

  it('isolates tenants: the same request never shares a key across tenants', () => {
    expect(cacheKey('tenant-a', 'm', 'chat', body)).not.toBe(cacheKey('tenant-b', 'm', 'chat', body));
    // no ambiguity from concatenation
    expect(cacheKey('ab', 'c', 'chat', body)).not.toBe(cacheKey('a', 'bc', 'chat', body));
  });
});

describe('cacheability', () => {
  it('deterministic: temperature 0 or an integer seed, with n absent or 1', () => {
    expect(isCacheable({ temperature: 0 }, 'deterministic')).toBe(true);
    expect(isCacheable({ seed: 42, temperature: 0.8 }, 'deterministic')).toBe(true);
    expect(isCacheable({ temperature: 0, n: 1 }, 'deterministic')).toBe(true);
    expect(isCacheable({ temperature: 0, n: 2 }, 'deterministic')).toBe(false);
    expect(isCacheable({}, 'deterministic')).toBe(false);
    expect(isCacheable({ temperature: 0.2 }, 'deterministic')).toBe(false);
    expect(isCacheable({ seed: 'x' }, 'deterministic')).toBe(false);
    expect(isCacheable({ input: 'x' }, 'deterministic', false)).toBe(true);
  });

  it('off and always', () => {
    expect(isCacheable({ temperature: 0 }, 'off')).toBe(false);
    expect(isCacheable({ temperature: 1.3, n: 3 }, 'always')).toBe(true);
    expect(resolveCacheMode('deterministic', undefined)).toBe('deterministic');
    expect(resolveCacheMode('deterministic', 'off')).toBe('off');
  });

  it('reads Cache-Control', () => {
    expect(cacheDirective(undefined)).toBe('use');
    expect(cacheDirective('no-store')).toBe('bypass');
    expect(cacheDirective('no-cache')).toBe('refresh');
    expect(cacheDirective('max-age=0')).toBe('refresh');
    expect(cacheDirective('max-age=60')).toBe('use');
    expect(cacheDirective('No-Cache, no-store')).toBe('bypass');
  });
});
