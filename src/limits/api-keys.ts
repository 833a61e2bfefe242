/**
 * API keys: secrets `sk-swy-<43 base64url chars>` (256 random bits), kept
 * only as their SHA-256 (hex). A plain hash is enough for secrets of this
 * entropy (no salt or slow hash needed: there is nothing to brute-force).
 */
import type { GuardActionName } from '../guard/config.ts';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Budget } from './config.ts';

/** A key as stored (config or Redis). */
export interface KeyRecord {
  /** Public id, for logs, metrics, limits and revocation. */
  id: string;
  /** SHA-256 hex of the secret. */
  hash: string;
  tenant: string;
  /** Allowed public model names (globs). */
  models: string[];
  name?: string;
  rpm?: number;
  tpm?: number;
  budget?: Budget;
  maxTokensCap?: number;
  /** Data zones the key's requests may reach (unset: the tenant's, else every zone). */
  zones?: string[];
  /** The key's own guard actions per category, over its tenant's. */
  guard?: Record<string, GuardActionName>;
  revoked?: boolean;
  /** ISO time of creation. */
  createdAt: string;
}

export const apiKeyPrefix = 'sk-swy-';

/** SHA-256 hex of a secret. */
export function hashApiKey(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A new random secret and its hash; show the secret once, store the hash. */
export function generateApiKey(): { secret: string; hash: string } {
  const secret = `${apiKeyPrefix}${randomBytes(32).toString('base64url')}`;
  return { secret, hash: hashApiKey(secret) };
}

/** Constant-time comparison of two SHA-256 hex hashes. */
export function hashesEqual(left: string, right: string): boolean {
  const a = Buffer.from(left, 'hex');
  const b = Buffer.from(right, 'hex');
  if (a.length !== 32 || b.length !== 32) return false;
  return timingSafeEqual(a, b);
}

/** The default id of a config key: the first 16 hex digits of its hash. */
export function defaultKeyId(hash: string): string {
  return `key_${hash.slice(0, 16)}`;
}

/**
 * The secret a request carries: `Authorization: Bearer …` (what the OpenAI
 * SDKs send), else `x-api-key` or `api-key`. Undefined when none.
 */
export function apiKeyFromHeaders(headers: Record<string, string | string[] | undefined>): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match?.[1]) return match[1];
  }
  for (const name of ['x-api-key', 'api-key']) {
    const value = headers[name];
    if (typeof value === 'string' && value.trim()) return value.trim();
  }
  return undefined;
}
