import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/errors.ts';
import { apiKeyFromHeaders, generateApiKey, hashApiKey, hashesEqual } from '../../../src/limits/api-keys.ts';
import { assertModelAllowed, authenticate, cappedMaxTokens, modelAllowed } from '../../../src/limits/authenticate.ts';
import { compileModelGlobs } from '../../../src/limits/glob.ts';
import { configEntryYaml, createKey, listKeys, revokeKey } from '../../../src/limits/key-admin.ts';
import { MemoryKeyStore, recordsFromConfig } from '../../../src/limits/key-store.ts';
import { LayeredKeyStore } from '../../../src/limits/layered-key-store.ts';

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('API key secrets and hashes', () => {
  it('generates sk-swy- secrets with 256 random bits and hashes them with SHA-256', () => {
    const { secret, hash } = generateApiKey();
    expect(secret).toMatch(/^sk-swy-[A-Za-z0-9_-]{43}$/);
    expect(hash).toBe(hashApiKey(secret));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(generateApiKey().secret).not.toBe(secret);
    expect(hashApiKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('compares hashes in constant time and refuses malformed ones', () => {
    const hash = hashApiKey('x');
    expect(hashesEqual(hash, hash)).toBe(true);
    expect(hashesEqual(hash, hashApiKey('y'))).toBe(false);
    expect(hashesEqual(hash, 'abc')).toBe(false);
    expect(hashesEqual('', '')).toBe(false);
  });

  it('reads the secret from Authorization: Bearer, x-api-key or api-key', () => {
    expect(apiKeyFromHeaders({ authorization: 'Bearer sk-swy-1' })).toBe('sk-swy-1');
    expect(apiKeyFromHeaders({ authorization: 'bearer  sk-swy-2 ' })).toBe('sk-swy-2');
    expect(apiKeyFromHeaders({ 'x-api-key': 'sk-swy-3' })).toBe('sk-swy-3');
    expect(apiKeyFromHeaders({ 'api-key': 'sk-swy-4' })).toBe('sk-swy-4');
    expect(apiKeyFromHeaders({ authorization: 'Basic abc' })).toBeUndefined();
    expect(apiKeyFromHeaders({})).toBeUndefined();
  });
});

describe('model globs', () => {
  it('matches *, prefix-* and exact names', () => {
    expect(compileModelGlobs(['*'])('anything/at-all')).toBe(true);
    const match = compileModelGlobs(['qwen3-*', 'llama-3.1-8b', '*-instruct']);
    expect(match('qwen3-8b')).toBe(true);
    expect(match('qwen3-')).toBe(true);
    expect(match('qwen2-7b')).toBe(false);
    expect(match('llama-3.1-8b')).toBe(true);
    expect(match('llama-3x1-8b')).toBe(false); // the dot is literal
    expect(match('mistral-instruct')).toBe(true);
    expect(compileModelGlobs([])('x')).toBe(false);
    expect(modelAllowed({ models: ['a-*'] }, 'a-1')).toBe(true);
    expect(() => assertModelAllowed({ models: ['a-*'] }, 'b-1')).toThrow(GatewayError);
    try {
      assertModelAllowed({ models: ['a-*'] }, 'b-1');
    } catch (error) {
      expect((error as GatewayError).status).toBe(403);
      expect((error as GatewayError).code).toBe('model_not_allowed');
    }
  });
});

describe('authentication and key administration (memory)', () => {
  it('creates, lists, authenticates and revokes keys; the secret is never stored', async () => {
    const store = new LayeredKeyStore(new MemoryKeyStore(), undefined, { cacheTtlMs: 0 });
    const { secret, record } = await createKey(store, { tenant: 'team-a', models: ['qwen3-*'], rpm: 10, tpm: 1000, budget: { amount: 5, period: 'day' } });
    expect(record.hash).toBe(hashApiKey(secret));
    expect(JSON.stringify(await store.list())).not.toContain(secret);
    const listed = await listKeys(store);
    expect(listed).toHaveLength(1);
    expect(listed[0]).not.toHaveProperty('hash');
    expect(listed[0]).toMatchObject({ id: record.id, tenant: 'team-a', rpm: 10 });
    expect((await authenticate(store, { authorization: `Bearer ${secret}` })).id).toBe(record.id);

    const missing = await rejection(authenticate(store, {}));
    expect(missing.status).toBe(401);
    expect(missing.code).toBe('invalid_api_key');
    const wrong = await rejection(authenticate(store, { authorization: `Bearer ${secret}x` }));
    expect(wrong.status).toBe(401);
    expect(wrong.message).not.toContain(secret);

    expect((await revokeKey(store, record.id))?.revoked).toBe(true);
    expect((await rejection(authenticate(store, { authorization: `Bearer ${secret}` }))).status).toBe(401);
    expect(await revokeKey(store, 'key_nope')).toBeUndefined();
    expect(configEntryYaml(record)).toContain(`hash: ${record.hash}`);
  });

  it('serves config keys (hashes only) and refuses to overwrite them', async () => {
    const { secret, hash } = generateApiKey();
    const records = recordsFromConfig([{ hash, tenant: 'ops', models: ['*'], revoked: false }]);
    expect(records[0]?.id).toBe(`key_${hash.slice(0, 16)}`);
    const store = new LayeredKeyStore(new MemoryKeyStore(records), undefined, { cacheTtlMs: 0 });
    expect((await authenticate(store, { 'x-api-key': secret })).tenant).toBe('ops');
    await expect(store.put({ ...records[0]!, revoked: true })).rejects.toThrow(/defined in the config/);
  });

  it('caps max_tokens', () => {
    expect(cappedMaxTokens({ max_tokens: 100 }, undefined)).toBeUndefined();
    expect(cappedMaxTokens({ max_tokens: 100 }, 200)).toBeUndefined();
    expect(cappedMaxTokens({ max_tokens: 500 }, 200)).toEqual({ field: 'max_tokens', value: 200 });
    expect(cappedMaxTokens({}, 200)).toEqual({ field: 'max_tokens', value: 200 });
    expect(cappedMaxTokens({ max_completion_tokens: 900 }, 200)).toEqual({ field: 'max_completion_tokens', value: 200 });
  });
});

describe('limit subjects', async () => {
  const { limitSubject } = await import('../../../src/limits/subject.ts');
  const limits = {
    onRedisError: 'open' as const,
    defaults: { rpm: 60, tpm: 10_000 },
    reserveCompletionTokens: 512,
    tenants: { t: { budget: { amount: 9, period: 'month' as const } } },
  };
  it('uses the key limits, then the defaults; anonymous without a key', () => {
    expect(limitSubject(undefined, limits)).toEqual({ id: 'anonymous', tenant: 'default', rpm: 60, tpm: 10_000, budgets: [] });
    const subject = limitSubject({ id: 'k', hash: 'h', tenant: 't', models: ['*'], rpm: 5, createdAt: '' }, limits);
    expect(subject).toMatchObject({ id: 'k', tenant: 't', rpm: 5, tpm: 10_000 });
    expect(subject.budgets).toEqual([{ scope: 'tenant', id: 't', budget: { amount: 9, period: 'month' } }]);
  });
});
