/** Which requests the cache may answer, and what the client's Cache-Control asks. */
import type { CacheMode } from './config.ts';

/**
 * True when the request may be served from / stored in the cache.
 *
 * - `off`: never.
 * - `always`: every request (sampled answers are then repeated verbatim).
 * - `deterministic` (default): answers that are not sampled (`sampled`
 *   false: embeddings, rerank) always; sampled ones (chat, completions, and
 *   surfaces translated onto chat, read as the chat request they map to)
 *   when `temperature` is exactly 0 OR `seed` is an integer, AND `n` is
 *   absent or 1. A request without `temperature` is sampled at the server's
 *   default (usually 1), so it is not cached unless it has a seed.
 */
export function isCacheable(body: Readonly<Record<string, unknown>>, mode: CacheMode, sampled = true): boolean {
  if (mode === 'off') return false;
  if (mode === 'always') return true;
  if (!sampled) return true;
  const n = body.n;
  if (n !== undefined && n !== null && n !== 1) return false;
  return body.temperature === 0 || Number.isInteger(body.seed);
}

const breadth: Record<CacheMode, number> = { off: 0, deterministic: 1, always: 2 };

/** `models[].cache.mode` when set, else `cache.mode`; a tenant's own mode (`tenants.<t>.cache`) can only narrow it. */
export function resolveCacheMode(globalMode: CacheMode, modelMode: CacheMode | undefined, tenantMode?: CacheMode): CacheMode {
  const mode = modelMode ?? globalMode;
  return tenantMode !== undefined && breadth[tenantMode] < breadth[mode] ? tenantMode : mode;
}

/**
 * What the client's `Cache-Control` asks: `no-store` → `bypass` (no lookup,
 * nothing stored; header BYPASS); `no-cache` → `refresh` (no lookup, the
 * fresh answer replaces the entry; header MISS); otherwise `use`.
 */
export function cacheDirective(cacheControl: string | string[] | undefined): 'use' | 'refresh' | 'bypass' {
  if (cacheControl === undefined) return 'use';
  const text = (Array.isArray(cacheControl) ? cacheControl.join(',') : cacheControl).toLowerCase();
  const directives = new Set(text.split(',').map((part) => part.trim().split('=')[0]));
  if (directives.has('no-store')) return 'bypass';
  if (directives.has('no-cache') || (directives.has('max-age') && /max-age\s*=\s*0\b/.test(text))) return 'refresh';
  return 'use';
}
