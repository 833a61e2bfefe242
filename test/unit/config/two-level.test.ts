/**
 * Every option that exists at two levels of the config (a global value and a
 * per-model / per-key / per-tenant / per-listener one): the effective value for
 * each combination of unset and set, after loading (which fills defaults in).
 * A filled-in default at the lower level must never hide the global value
 * (issue 13 item 10: `cache: { mode: off }` did not turn the cache off).
 */
import type { TSchema } from '@sinclair/typebox';
import { OptionalKind } from '@sinclair/typebox';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { isCacheable, resolveCacheMode } from '../../../src/cache/policy.ts';
import { validateConfig } from '../../../src/config/load.ts';
import { ConfigSchema } from '../../../src/config/schema.ts';
import { cappedMaxTokens } from '../../../src/limits/authenticate.ts';
import { recordsFromConfig } from '../../../src/limits/key-store.ts';
import { limitSubject } from '../../../src/limits/subject.ts';
import { reservationTokens } from '../../../src/proxy/estimate.ts';
import { createRedis, type RedisClient } from '../../../src/redis/client.ts';
import { startGateway } from '../../../src/server.ts';

const keyHash = 'a'.repeat(64);

function load(extra: Record<string, unknown>, model: Record<string, unknown> = {}) {
  return validateConfig(
    {
      logging: { level: 'silent' },
      backends: [{ id: 'a', kind: 'vllm', url: 'http://127.0.0.1:9' }],
      models: [{ name: 'm', targets: [{ backend: 'a', model: 'x' }], ...model }],
      ...extra,
    },
    'test',
    {},
  );
}

/** Both values of a pair: undefined = not written in the config. */
function combinations<A, B>(upper: readonly A[], lower: readonly B[]): Array<[A, B]> {
  return upper.flatMap((a) => lower.map((b): [A, B] => [a, b]));
}

/** Paths of optional properties that carry a default (loading would fill them in: never "unset"). */
function optionalWithDefault(schema: TSchema, path: string, found: string[]): string[] {
  const typed = schema as TSchema & { properties?: Record<string, TSchema>; items?: TSchema; patternProperties?: Record<string, TSchema>; anyOf?: TSchema[] };
  for (const [name, property] of Object.entries(typed.properties ?? {})) {
    const where = path ? `${path}.${name}` : name;
    if ((property as unknown as Record<symbol, unknown>)[OptionalKind] === 'Optional' && 'default' in property) found.push(where);
    optionalWithDefault(property, where, found);
  }
  if (typed.items) optionalWithDefault(typed.items, `${path}[]`, found);
  for (const value of Object.values(typed.patternProperties ?? {})) optionalWithDefault(value, `${path}.*`, found);
  for (const branch of typed.anyOf ?? []) optionalWithDefault(branch, path, found);
  return found;
}

describe('options at two levels: unset below inherits from above', () => {
  it('no optional option carries a default (a filled-in default would override the level above)', () => {
    expect(optionalWithDefault(ConfigSchema, '', [])).toEqual([]);
  });

  const modes = [undefined, 'off', 'deterministic', 'always'] as const;
  it.each(combinations(modes, modes))('cache.mode %s × models[].cache.mode %s', (globalMode, modelMode) => {
    const config = load(globalMode ? { cache: { mode: globalMode } } : {}, modelMode ? { cache: { mode: modelMode } } : {});
    const effective = resolveCacheMode(config.cache.mode, config.models[0]?.cache.mode);
    expect(effective).toBe(modelMode ?? globalMode ?? 'deterministic');
    // A temperature-0 chat: cached unless the effective mode is off.
    expect(isCacheable({ temperature: 0 }, effective)).toBe(effective !== 'off');
  });

  const rates = [undefined, 60] as const;
  const keyRates = [undefined, 5] as const;
  for (const option of ['rpm', 'tpm'] as const) {
    it.each(combinations(rates, keyRates))(`limits.defaults.${option} %s × auth.keys[].${option} %s`, (defaultValue, keyValue) => {
      const config = load({
        auth: { mode: 'keys', keys: [{ hash: keyHash, ...(keyValue === undefined ? {} : { [option]: keyValue }) }] },
        limits: { defaults: defaultValue === undefined ? {} : { [option]: defaultValue } },
      });
      const [record] = recordsFromConfig(config.auth.keys);
      expect(limitSubject(record, config.limits)[option]).toBe(keyValue ?? defaultValue);
      // Without a key (auth.mode none) the defaults are the gateway-wide limits.
      expect(limitSubject(undefined, config.limits)[option]).toBe(defaultValue);
    });
  }

  const keyBudget = { amount: 1, period: 'day' } as const;
  const tenantBudget = { amount: 30, period: 'month' } as const;
  it.each(combinations([undefined, tenantBudget], [undefined, keyBudget]))('limits.tenants[t].budget %o × auth.keys[].budget %o: both apply', (tenant, key) => {
    const config = load({
      auth: { mode: 'keys', keys: [{ id: 'k', hash: keyHash, tenant: 't', ...(key ? { budget: key } : {}) }] },
      limits: { tenants: tenant ? { t: { budget: tenant } } : {} },
    });
    const [record] = recordsFromConfig(config.auth.keys);
    const expected = [...(key ? [{ scope: 'key', id: 'k', budget: key }] : []), ...(tenant ? [{ scope: 'tenant', id: 't', budget: tenant }] : [])];
    expect(limitSubject(record, config.limits).budgets).toEqual(expected);
  });

  it.each([undefined, tenantBudget])('limits.tenants.default.budget %o is the budget of every request with auth.mode none', (budget) => {
    const config = load({ limits: { tenants: budget ? { default: { budget } } : {} } });
    expect(limitSubject(undefined, config.limits).budgets).toEqual(budget ? [{ scope: 'tenant', id: 'default', budget }] : []);
  });

  // limits.reserveCompletionTokens is the completion reserved for a request without max_tokens; a key's
  // maxTokensCap sets max_tokens when absent (and lowers it when above), so it wins for that key.
  it.each(combinations([undefined, 100], [undefined, 40, 1000]))('limits.reserveCompletionTokens %s × auth.keys[].maxTokensCap %s', (reserve, cap) => {
    const config = load({
      auth: { mode: 'keys', keys: [{ hash: keyHash, ...(cap === undefined ? {} : { maxTokensCap: cap }) }] },
      limits: reserve === undefined ? {} : { reserveCompletionTokens: reserve },
    });
    const [record] = recordsFromConfig(config.auth.keys);
    const completion = (body: Record<string, unknown>) => {
      const capped = cappedMaxTokens(body, record?.maxTokensCap);
      const sent = capped ? { ...body, [capped.field]: capped.value } : body;
      return reservationTokens(sent, config.limits.reserveCompletionTokens) - reservationTokens({ ...sent, max_tokens: 0 }, 0);
    };
    const prompt = { messages: [{ role: 'user', content: 'hi' }] };
    expect(completion(prompt)).toBe(cap ?? reserve ?? 512);
    expect(completion({ ...prompt, max_tokens: 200 })).toBe(Math.min(200, cap ?? Number.POSITIVE_INFINITY));
  });

  it.each(combinations([undefined, 'right'], [undefined, 5]))('redis.password %s and redis.db %s × the ones in redis.url', async (password, db) => {
    const config = load({ redis: { url: 'redis://:wrong@127.0.0.1:9/3', ...(password ? { password } : {}), ...(db === undefined ? {} : { db }) } });
    if (!config.redis) throw new Error('redis section missing');
    const client: RedisClient = createRedis(config.redis, pino({ level: 'silent' }));
    try {
      const options = client.options as { password?: string; db?: number | string };
      expect(options.password).toBe(password ?? 'wrong');
      expect(Number(options.db)).toBe(db ?? 3);
    } finally {
      client.disconnect();
    }
  });

  it('redis.username and a password with URL-special characters win over redis.url as written', () => {
    const config = load({ redis: { url: 'redis://olduser:old@127.0.0.1:9', username: 'new user', password: 'p@ss:w/rd%41#?' } });
    if (!config.redis) throw new Error('redis section missing');
    const client = createRedis(config.redis, pino({ level: 'silent' }));
    try {
      expect(client.options).toMatchObject({ username: 'new user', password: 'p@ss:w/rd%41#?' });
    } finally {
      client.disconnect();
    }
  });

  it.each([undefined, 'localhost'])('server.host 127.0.0.1 × admin.host %s: the admin listener', async (adminHost) => {
    const config = load({ server: { host: '127.0.0.1', port: 0 }, admin: { port: 0, ...(adminHost ? { host: adminHost } : {}) } });
    const gateway = await startGateway(config, { port: 0, healthChecks: false });
    try {
      expect(new URL(gateway.url).hostname).toBe('127.0.0.1');
      expect(new URL(gateway.adminUrl ?? '').hostname).toBe(adminHost ?? '127.0.0.1');
      expect((await fetch(`${gateway.adminUrl}/healthz`)).status).toBe(200);
    } finally {
      await gateway.shutdown('test done');
    }
  });
});
