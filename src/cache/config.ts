/** The `cache` config section and the per-model `cache` override. */
import { Type, type Static } from '@sinclair/typebox';

export const CacheModeSchema = Type.Union([Type.Literal('off'), Type.Literal('deterministic'), Type.Literal('always')], {
  default: 'deterministic',
  description: 'off: never cache; deterministic: temperature 0 or a seed (see isCacheable); always: every request',
});

export const CacheConfigSchema = Type.Object(
  {
    mode: CacheModeSchema,
    ttlSeconds: Type.Integer({ minimum: 1, default: 600, description: 'how long an answer is served from the cache' }),
    maxEntryBytes: Type.Integer({ minimum: 256, default: 1_048_576, description: 'answers larger than this are not stored' }),
    timeoutMs: Type.Integer({ minimum: 1, default: 100, description: 'a cache read or write slower than this is skipped (counted, logged)' }),
    singleFlight: Type.Boolean({ default: true, description: 'concurrent identical requests share one upstream call (per replica)' }),
    memory: Type.Object(
      {
        maxEntries: Type.Integer({ minimum: 1, default: 10_000 }),
        maxBytes: Type.Integer({ minimum: 1024, default: 64 * 1_048_576 }),
      },
      { additionalProperties: false, default: {} },
    ),
    encryptionKey: Type.Optional(
      Type.String({ minLength: 1, description: '32-byte key as base64 or hex (use ${ENV}); values in Redis are AES-256-GCM encrypted' }),
    ),
    encryptionKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the key (base64, hex or 32 raw bytes)' })),
  },
  { additionalProperties: false, default: {} },
);

/** Fragment for ModelSchema: `models[].cache.mode` overrides `cache.mode`. */
export const ModelCacheSchema = Type.Object({ mode: Type.Optional(CacheModeSchema) }, { additionalProperties: false, default: {} });

export type CacheMode = Static<typeof CacheModeSchema>;
export type CacheConfig = Static<typeof CacheConfigSchema>;
export type ModelCacheConfig = Static<typeof ModelCacheSchema>;
