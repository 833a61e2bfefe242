/** The `guard` config section and the per-tenant, per-key and per-zone guard actions (see policy.ts). */
import { Type } from '@sinclair/typebox';

/** What the guard can do with a category it found, least strict first. */
export const guardActionNames = ['allow', 'confine', 'redact', 'block'] as const;
export type GuardActionName = (typeof guardActionNames)[number];

export const GuardActionSchema = Type.Union(guardActionNames.map((action) => Type.Literal(action)));
export const GuardActionsSchema = Type.Record(Type.String({ minLength: 1 }), GuardActionSchema);

/** The PII and secret guard (src/guard/): what it looks for, and what it does with each category found. */
export const GuardSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false, description: 'scan request bodies for personal data and secrets' }),
    actions: Type.Record(Type.String({ minLength: 1 }), GuardActionSchema, {
      default: {},
      description:
        'per category (email, phone, card, iban, ip, private_key, jwt, api_key, high_entropy, or a pattern name): allow | confine (sensitive zones only) | redact | block',
    }),
    output: Type.Union([Type.Literal('off'), Type.Literal('redact')], {
      default: 'off',
      description: 'redact: scan answers, streamed or not, for secrets (private_key, api_key, jwt) and replace them with [<CATEGORY>_REDACTED]',
    }),
    restore: Type.Boolean({
      default: false,
      description: 'put redacted values back where the model repeats their placeholders (answers and streams of every surface)',
    }),
    patterns: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1, pattern: '^[a-z][a-z0-9_]*$', description: 'category name (placeholder [NAME_n])' }),
          pattern: Type.String({ minLength: 1, description: 'JavaScript regular expression' }),
          flags: Type.Optional(Type.String({ pattern: '^[imsu]*$' })),
        },
        { additionalProperties: false },
      ),
      { default: [], description: 'extra categories as regular expressions (give each an action)' },
    ),
  },
  { additionalProperties: false, default: {} },
);
