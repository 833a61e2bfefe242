import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.ts';
import { mergeReload } from '../../../src/config/reload.ts';

const base = {
  backends: [{ id: 'a', kind: 'vllm', url: 'http://127.0.0.1:8000' }],
  models: [{ name: 'm', targets: [{ backend: 'a', model: 'x' }] }],
  auth: { mode: 'keys', keys: [{ id: 'k1', hash: 'a'.repeat(64) }] },
};
const config = (extra: Record<string, unknown> = {}) => validateConfig({ ...base, ...extra }, 'test', {});

describe('mergeReload', () => {
  it('applies backends, models, tenants, keys and limits; names nothing when only those changed', () => {
    const next = config({
      backends: [...base.backends, { id: 'b', kind: 'llamacpp', url: 'http://127.0.0.1:8001' }],
      auth: { mode: 'keys', keys: [{ id: 'k2', hash: 'b'.repeat(64) }] },
      limits: { defaults: { rpm: 10 } },
    });
    const { applied, restartRequired } = mergeReload(config(), next);
    expect(restartRequired).toEqual([]);
    expect(applied).toEqual(next);
  });

  it('keeps the running value of sections bound at startup and names each', () => {
    const running = config();
    const next = config({ server: { port: 9999 }, cache: { ttlSeconds: 5 }, auth: { mode: 'none', keys: [] }, limits: { onRedisError: 'closed' } });
    const { applied, restartRequired } = mergeReload(running, next);
    expect(restartRequired).toEqual(['server', 'cache', 'auth.mode', 'limits.onRedisError']);
    expect(applied.server).toEqual(running.server);
    expect(applied.cache).toEqual(running.cache);
    expect(applied.auth).toEqual({ ...running.auth, keys: [] });
    expect(applied.limits.onRedisError).toBe(running.limits.onRedisError);
  });
});
