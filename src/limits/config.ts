/** The `auth` and `limits` config sections. */
import { Type, type Static } from '@sinclair/typebox';

export const BudgetSchema = Type.Object(
  {
    amount: Type.Number({ minimum: 0, description: 'cost allowed per period, in the unit of backends[].cost' }),
    period: Type.Union([Type.Literal('day'), Type.Literal('month')], { description: 'calendar day or month, UTC' }),
  },
  { additionalProperties: false },
);

/** One API key in the config: only its SHA-256, never the secret. */
export const ConfigKeySchema = Type.Object(
  {
    id: Type.Optional(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$', description: 'name in logs and metrics (default: first 16 hex of the hash)' })),
    hash: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 hex of the secret (`switchyard keys hash`)' }),
    tenant: Type.String({ minLength: 1, default: 'default' }),
    models: Type.Array(Type.String({ minLength: 1 }), { default: ['*'], description: 'allowed public model names; `*` and `prefix-*` globs' }),
    rpm: Type.Optional(Type.Integer({ minimum: 0, description: 'requests per minute' })),
    tpm: Type.Optional(Type.Integer({ minimum: 0, description: 'tokens (prompt + completion) per minute' })),
    budget: Type.Optional(BudgetSchema),
    maxTokensCap: Type.Optional(Type.Integer({ minimum: 1, description: 'max_tokens is lowered to this (and set when absent)' })),
    zones: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: "zones this key's requests may reach (unset: the tenant's allowedZones, else every zone)" }),
    ),
    revoked: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

export const AuthConfigSchema = Type.Object(
  {
    mode: Type.Union([Type.Literal('none'), Type.Literal('keys')], { default: 'none', description: 'keys: every /v1 request needs an API key' }),
    keys: Type.Array(ConfigKeySchema, { default: [], description: 'keys from the config; more live in Redis (`switchyard keys create`)' }),
    cacheTtlMs: Type.Integer({ minimum: 0, default: 5_000, description: 'how long a replica reuses a key looked up in Redis (a revocation takes up to this long)' }),
    maxStaleMs: Type.Integer({
      minimum: 0,
      default: 30_000,
      description: 'while Redis does not answer, a key looked up before keeps working this long after its last lookup, then gets 503 (fail closed)',
    }),
  },
  { additionalProperties: false, default: {} },
);

export const TenantLimitsSchema = Type.Object({ budget: Type.Optional(BudgetSchema) }, { additionalProperties: false });

export const LimitsConfigSchema = Type.Object(
  {
    onRedisError: Type.Union([Type.Literal('open'), Type.Literal('closed')], {
      default: 'open',
      description: 'Redis down: open = allow and count; closed = refuse with 503 limits_unavailable',
    }),
    defaults: Type.Object(
      {
        rpm: Type.Optional(Type.Integer({ minimum: 0 })),
        tpm: Type.Optional(Type.Integer({ minimum: 0 })),
      },
      { additionalProperties: false, default: {}, description: 'limits of keys that set none (and of all requests with auth.mode none)' },
    ),
    reserveCompletionTokens: Type.Integer({
      minimum: 0,
      default: 512,
      description: 'tokens reserved for the answer when a request sets no max_tokens, for tokens per minute and (at its price) for budgets; settled to the real usage afterwards',
    }),
    tenants: Type.Record(Type.String({ minLength: 1 }), TenantLimitsSchema, { default: {}, description: 'per-tenant budgets' }),
  },
  { additionalProperties: false, default: {} },
);

export type Budget = Static<typeof BudgetSchema>;
export type ConfigKey = Static<typeof ConfigKeySchema>;
export type AuthConfig = Static<typeof AuthConfigSchema>;
export type LimitsConfig = Static<typeof LimitsConfigSchema>;
