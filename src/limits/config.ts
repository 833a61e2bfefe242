/** The `auth` and `limits` config sections. */
import { Type, type Static } from '@sinclair/typebox';
import { GuardActionsSchema } from '../guard/config.ts';

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
    guard: Type.Optional(GuardActionsSchema),
    revoked: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

const Claim = (name: string, description: string) => Type.String({ minLength: 1, default: name, description });

/** Bearer JWTs from an identity provider (auth.mode jwt or keys+jwt), see jwt.ts. */
export const JwtConfigSchema = Type.Object(
  {
    jwksFile: Type.Optional(Type.String({ minLength: 1, description: 'a JWKS file (air-gapped); read at start and again when a token names an unknown kid' })),
    jwksUrl: Type.Optional(Type.String({ pattern: '^https?://', description: "the issuer's JWKS URL (cached; fetched again on an unknown kid, at most once per cooldown)" })),
    issuer: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], { description: '`iss` a token must carry' }),
    audience: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], { description: '`aud` a token must carry (one of)' }),
    algorithms: Type.Array(Type.Union(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'].map((alg) => Type.Literal(alg))), {
      minItems: 1,
      default: ['RS256', 'ES256', 'EdDSA'],
      description: 'accepted signature algorithms (asymmetric only: no HS*, never none)',
    }),
    clockSkewSeconds: Type.Integer({ minimum: 0, maximum: 600, default: 30, description: 'tolerance on exp and nbf' }),
    jwksTimeoutMs: Type.Integer({ minimum: 1, default: 2_000, description: 'JWKS URL fetch timeout' }),
    jwksCooldownMs: Type.Integer({ minimum: 0, default: 30_000, description: 'least time between two JWKS fetches for unknown kids' }),
    jwksMaxAgeMs: Type.Integer({ minimum: 1, default: 600_000, description: 'a fetched JWKS is used this long before it is fetched again' }),
    jwksMaxBytes: Type.Integer({ minimum: 1_024, default: 1_048_576, description: 'largest JWKS document accepted' }),
    maxTokenBytes: Type.Integer({ minimum: 256, default: 16_384, description: 'longer bearer tokens are refused unread' }),
    cacheSize: Type.Integer({ minimum: 0, default: 10_000, description: 'verified tokens remembered (until exp, at most 60 s) so each is verified once' }),
    claims: Type.Object(
      {
        tenant: Claim('tenant', 'claim naming the tenant (absent: `default`)'),
        subject: Claim('sub', 'claim naming the caller, in logs and the audit log as its key id (`jwt:<value>`)'),
        models: Claim('models', 'claim with the allowed public models (array of globs; absent: all)'),
        rpm: Claim('rpm', 'claim with requests per minute'),
        tpm: Claim('tpm', 'claim with tokens per minute'),
        budget: Claim('budget', 'claim with a budget `{ amount, period: day|month }`'),
        maxTokensCap: Claim('max_tokens_cap', 'claim with the max_tokens cap'),
        zones: Claim('zones', 'claim with the data zones the caller may reach (array)'),
        guard: Claim('guard', 'claim with guard actions per category (an object, e.g. { "email": "block" })'),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export const AuthConfigSchema = Type.Object(
  {
    mode: Type.Union([Type.Literal('none'), Type.Literal('keys'), Type.Literal('jwt'), Type.Literal('keys+jwt')], {
      default: 'none',
      description: 'keys: every /v1 request needs an API key; jwt: a bearer JWT (auth.jwt); keys+jwt: either',
    }),
    jwt: Type.Optional(JwtConfigSchema),
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
export type JwtConfig = Static<typeof JwtConfigSchema>;
export type LimitsConfig = Static<typeof LimitsConfigSchema>;
