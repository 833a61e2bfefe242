/**
 * Cache key derivation. The key is a SHA-256 over tenant, public model,
 * endpoint and the normalised request, so tenants never share entries and no
 * prompt text ever appears in a Redis key.
 */
import { createHash } from 'node:crypto';

/**
 * Fields that do not change the answer: how it is delivered (`stream`,
 * `stream_options`), who asks (`user`, already covered by the tenant) and
 * `model` (the public model is hashed separately, after alias resolution).
 */
const ignoredFields = new Set(['stream', 'stream_options', 'user', 'model']);

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const item = (value as Record<string, unknown>)[key];
    if (item !== undefined) sorted[key] = sortKeys(item);
  }
  return sorted;
}

/** The request as hashed: keys sorted at every depth, ignored fields dropped. */
export function normaliseRequest(body: Readonly<Record<string, unknown>>): string {
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) if (!ignoredFields.has(key)) kept[key] = value;
  return JSON.stringify(sortKeys(kept));
}

/** The cache key: hex SHA-256 of (version, tenant, public model, endpoint, normalised request). */
export function cacheKey(tenant: string, publicModel: string, endpoint: string, body: Readonly<Record<string, unknown>>): string {
  return createHash('sha256')
    .update(JSON.stringify(['swy-cache-v1', tenant, publicModel, endpoint]))
    .update('\n')
    .update(normaliseRequest(body))
    .digest('hex');
}
