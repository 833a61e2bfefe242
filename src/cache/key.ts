/**
 * Cache key derivation. The key is a SHA-256 over tenant, public model,
 * endpoint and the normalised request, so tenants never share entries and no
 * prompt text ever appears in a Redis key.
 */
import { createHash } from 'node:crypto';
import { gatewayError } from '../errors.ts';

/**
 * Fields that do not change the answer: how it is delivered (`stream`,
 * `stream_options`), who asks (`user`, already covered by the tenant) and
 * `model` (the public model is hashed separately, after alias resolution).
 */
const ignoredFields = new Set(['stream', 'stream_options', 'user', 'model']);

/**
 * Deeper than any request a client means to send (tool schemas nest a dozen levels); a body nested
 * thousands of levels deep would overflow the stack here, so it is refused as a client error.
 */
export const maxNestingDepth = 128;

function sortKeys(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > maxNestingDepth) {
    throw gatewayError('SWY_ERR_INVALID_PARAM', { message: `The request nests JSON more than ${maxNestingDepth} levels deep; flatten it.` });
  }
  if (Array.isArray(value)) return value.map((item) => sortKeys(item, depth + 1));
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const item = (value as Record<string, unknown>)[key];
    if (item !== undefined) sorted[key] = sortKeys(item, depth + 1);
  }
  return sorted;
}

/** The request as hashed: keys sorted at every depth, ignored fields dropped. */
export function normaliseRequest(body: Readonly<Record<string, unknown>>): string {
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) if (!ignoredFields.has(key)) kept[key] = value;
  return JSON.stringify(sortKeys(kept, 0));
}

/** The cache key: hex SHA-256 of (version, tenant, public model, endpoint, normalised request). */
export function cacheKey(tenant: string, publicModel: string, endpoint: string, body: Readonly<Record<string, unknown>>): string {
  return createHash('sha256')
    .update(JSON.stringify(['swy-cache-v1', tenant, publicModel, endpoint]))
    .update('\n')
    .update(normaliseRequest(body))
    .digest('hex');
}
