/** The `cache` config section and the per-model `cache` override. */
import { Type, type Static } from '@sinclair/typebox';

const cacheModeDescription = 'off: never cache; deterministic: temperature 0 or a seed (see isCacheable); always: every request';
const cacheModes = () => [Type.Literal('off'), Type.Literal('deterministic'), Type.Literal('always')];

export const CacheModeSchema = Type.Union(cacheModes(), { default: 'deterministic', description: cacheModeDescription });

export const CacheConfigSchema = Type.Object(
  {
    mode: CacheModeSchema,
    ttlSeconds: Type.Integer({ minimum: 1, default: 600, description: 'how long an answer is served from the cache' }),
    maxEntryBytes: Type.Integer({ minimum: 256, default: 1_048_576, description: 'answers larger than this are not stored' }),
    timeoutMs: Type.Integer({ minimum: 1, default: 100, description: 'a cache read or write slower than this is skipped (counted, logged)' }),
    singleFlight: Type.Boolean({ default: true, description: 'concurrent identical requests share one upstream call (across replicas with cluster sharing)' }),
    memory: Type.Object(
      {
        maxEntries: Type.Integer({ minimum: 1, default: 10_000 }),
        maxBytes: Type.Integer({ minimum: 1024, default: 64 * 1_048_576 }),
      },
      { additionalProperties: false, default: {} },
    ),
    encryptionKey: Type.Optional(Type.String({ minLength: 1, description: '32-byte key as base64 or hex (use ${ENV}); values in Redis are AES-256-GCM encrypted' })),
    encryptionKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the key (base64, hex or 32 raw bytes)' })),
  },
  { additionalProperties: false, default: {} },
);

/**
 * Fragment for ModelSchema: `models[].cache.mode` overrides `cache.mode`. No default here: loading fills
 * defaults in, and a filled-in per-model mode would override the global one (`cache.mode: off` would not
 * turn the cache off). Unset means "inherit"; resolveCacheMode applies the global mode.
 */
export const ModelCacheSchema = Type.Object(
  { mode: Type.Optional(Type.Union(cacheModes(), { description: `${cacheModeDescription}; unset: the global cache.mode` })) },
  { additionalProperties: false, default: {} },
);

/** Fragment for a tenant's data policy: a mode that can only narrow what the model and global settings allow. */
export const TenantCacheModeSchema = Type.Optional(
  Type.Union(cacheModes(), { description: "narrows the cache for this tenant's requests (never widens): off = nothing of theirs is stored or served from the cache" }),
);

export type CacheMode = Static<typeof CacheModeSchema>;
export type CacheConfig = Static<typeof CacheConfigSchema>;
export type ModelCacheConfig = Static<typeof ModelCacheSchema>;
