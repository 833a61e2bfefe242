import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { CacheConfigSchema, ModelCacheSchema } from '../../../src/cache/config.ts';
import { AuthConfigSchema, LimitsConfigSchema } from '../../../src/limits/config.ts';

const withDefaults = <T>(schema: Parameters<typeof Value.Default>[0], value: unknown): T => Value.Default(schema, Value.Convert(schema, structuredClone(value))) as T;

describe('config fragments', () => {
  it('fill their defaults from an empty section', () => {
    const auth = withDefaults(AuthConfigSchema, {});
    expect(auth).toEqual({ mode: 'none', keys: [], cacheTtlMs: 5_000, maxStaleMs: 30_000 });
    expect(Value.Check(AuthConfigSchema, auth)).toBe(true);
    const limits = withDefaults(LimitsConfigSchema, {});
    expect(limits).toEqual({ onRedisError: 'open', defaults: {}, reserveCompletionTokens: 512, tenants: {} });
    expect(Value.Check(LimitsConfigSchema, limits)).toBe(true);
    const cache = withDefaults(CacheConfigSchema, {});
    expect(cache).toEqual({
      mode: 'deterministic',
      ttlSeconds: 600,
      maxEntryBytes: 1_048_576,
      timeoutMs: 100,
      singleFlight: true,
      memory: { maxEntries: 10_000, maxBytes: 67_108_864 },
    });
    expect(Value.Check(CacheConfigSchema, cache)).toBe(true);
    expect(Value.Check(ModelCacheSchema, withDefaults(ModelCacheSchema, { mode: 'always' }))).toBe(true);
  });

  it('accept a full example and fill key defaults', () => {
    const auth = withDefaults<{ keys: Array<Record<string, unknown>> }>(AuthConfigSchema, {
      mode: 'keys',
      keys: [
        { id: 'ci', hash: 'a'.repeat(64), tenant: 'team-a', models: ['qwen3-*'], rpm: 60, tpm: 100_000, budget: { amount: 20, period: 'day' }, maxTokensCap: 2048 },
        { hash: 'b'.repeat(64) },
      ],
    });
    expect(Value.Check(AuthConfigSchema, auth)).toBe(true);
    expect(auth.keys[1]).toEqual({ hash: 'b'.repeat(64), tenant: 'default', models: ['*'], revoked: false });
    const limits = withDefaults(LimitsConfigSchema, {
      onRedisError: 'closed',
      defaults: { rpm: 600, tpm: 1_000_000 },
      tenants: { 'team-a': { budget: { amount: 500, period: 'month' } } },
    });
    expect(Value.Check(LimitsConfigSchema, limits)).toBe(true);
    expect(Value.Check(LimitsConfigSchema, withDefaults(LimitsConfigSchema, { tenants: { 'team-a': { budget: { amount: 500 } } } }))).toBe(false);
  });

  it('reject unknown fields, plaintext keys and bad values', () => {
    expect(Value.Check(AuthConfigSchema, withDefaults(AuthConfigSchema, { keys: [{ hash: 'sk-swy-plaintext' }] }))).toBe(false);
    expect(Value.Check(AuthConfigSchema, withDefaults(AuthConfigSchema, { mode: 'keys', extra: 1 }))).toBe(false);
    expect(Value.Check(LimitsConfigSchema, withDefaults(LimitsConfigSchema, { onRedisError: 'maybe' }))).toBe(false);
    expect(Value.Check(CacheConfigSchema, withDefaults(CacheConfigSchema, { mode: 'sometimes' }))).toBe(false);
    expect(Value.Check(CacheConfigSchema, withDefaults(CacheConfigSchema, { enabled: true }))).toBe(false);
  });
});
