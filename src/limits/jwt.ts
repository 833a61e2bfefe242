/**
 * Bearer JWTs from an identity provider (`auth.mode: jwt` or `keys+jwt`),
 * verified with jose (no hand-written crypto) against a JWKS from a file or
 * the issuer's URL. `iss`, `aud`, `exp` and `nbf` are checked with the
 * configured clock skew; only the configured asymmetric algorithms are
 * accepted, so an unsigned token (`alg: none`) or one signed HS256 with the
 * public key as its secret (algorithm confusion) is refused before any key is
 * used. The token's claims become a key record: the same tenant, model,
 * limit, budget and zone rules as an API key apply downstream.
 *
 * Cost: one signature check per distinct token; a verified token is
 * remembered (bounded count, until its exp and at most 60 s) so a client
 * reusing its token pays a map lookup. JWKS URL fetches are bounded in time,
 * size and rate (jose's cooldown: an unknown kid triggers at most one fetch
 * per `jwksCooldownMs`); a fetch that fails is 503 `auth_unavailable`, not
 * the client's fault.
 */
import { type GuardActionName, guardActionNames } from '../guard/config.ts';
import { readFileSync, statSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify, type JSONWebKeySet } from 'jose';
import { gatewayError, type GatewayError } from '../errors.ts';
import type { KeyRecord } from './api-keys.ts';
import type { JwtConfig } from './config.ts';

/** Upper bound on how long a verified token is reused without checking it again. */
const rememberMs = 60_000;

/** True when a bearer credential has the shape of a JWT (three base64url parts, a JSON header). */
export function looksLikeJwt(credential: string): boolean {
  return credential.startsWith('eyJ') && credential.split('.').length === 3;
}

function invalidToken(why: string): GatewayError {
  return gatewayError('SWY_ERR_INVALID_API_KEY', { message: `The bearer token is not accepted: ${why}.` });
}

/** Why jose refused a token, in words that help the caller and reveal nothing of the keys. */
function refusal(error: unknown): GatewayError {
  if (error instanceof errors.JWTExpired) return invalidToken('it has expired');
  if (error instanceof errors.JWTClaimValidationFailed) return invalidToken(`claim ${error.claim} is not valid (${error.reason})`);
  if (error instanceof errors.JOSEAlgNotAllowed) return invalidToken('its signature algorithm is not allowed');
  if (error instanceof errors.JWKSNoMatchingKey) return invalidToken('no known key matches its kid');
  if (error instanceof errors.JWKSTimeout || (error instanceof Error && error.name === 'JWKSFetchFailed')) {
    return gatewayError('SWY_ERR_AUTH_UNAVAILABLE', { message: "The gateway cannot fetch the identity provider's keys (JWKS). Retry shortly.", retryAfterSeconds: 5 });
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return invalidToken('its signature does not verify');
  return invalidToken('it is malformed or not signed as required');
}

/** A fetch for jose that refuses JWKS documents over `maxBytes` and reports network failures as such. */
function boundedFetch(maxBytes: number) {
  return async (url: string, options: RequestInit): Promise<Response> => {
    let response: Response;
    try {
      response = await fetch(url, options);
    } catch (error) {
      if ((error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError') throw error;
      throw Object.assign(new Error(`JWKS fetch failed: ${(error as Error).message}`), { name: 'JWKSFetchFailed' });
    }
    const declared = Number(response.headers.get('content-length') ?? '0');
    if (declared > maxBytes) throw Object.assign(new Error('JWKS document too large'), { name: 'JWKSFetchFailed' });
    const reader = response.body?.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw Object.assign(new Error('JWKS document too large'), { name: 'JWKSFetchFailed' });
      }
      chunks.push(value);
    }
    return new Response(Buffer.concat(chunks), { status: response.status, headers: response.headers });
  };
}

/** A JWKS file, read again (at most once per cooldown) when a token names a kid it does not have. */
function fileKeySet(path: string, cooldownMs: number): JWTVerifyGetKey {
  const read = () => createLocalJWKSet(JSON.parse(readFileSync(path, 'utf8')) as JSONWebKeySet);
  let current = read();
  let mtime = statSync(path).mtimeMs;
  let checkedAt = Date.now();
  return async (header, token) => {
    try {
      return await current(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey) || Date.now() - checkedAt < cooldownMs) throw error;
      checkedAt = Date.now();
      const now = statSync(path).mtimeMs;
      if (now === mtime) throw error;
      mtime = now;
      current = read();
      return current(header, token);
    }
  };
}

function stringList(value: unknown): string[] | undefined {
  if (typeof value === 'string' && value.length > 0) return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((entry) => typeof entry === 'string' && entry.length > 0)) return value as string[];
  return undefined;
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/** Verifies bearer JWTs and turns their claims into key records. */
export class JwtVerifier {
  private readonly keys: JWTVerifyGetKey;
  private readonly remembered = new Map<string, { record: KeyRecord; until: number }>();
  private readonly config: JwtConfig;

  constructor(config: JwtConfig) {
    this.config = config;
    if (config.jwksUrl) {
      this.keys = createRemoteJWKSet(new URL(config.jwksUrl), {
        timeoutDuration: config.jwksTimeoutMs,
        cooldownDuration: config.jwksCooldownMs,
        cacheMaxAge: config.jwksMaxAgeMs,
        [customFetch]: boundedFetch(config.jwksMaxBytes),
      });
    } else if (config.jwksFile) this.keys = fileKeySet(config.jwksFile, config.jwksCooldownMs);
    else throw new Error('auth.jwt needs jwksFile or jwksUrl');
  }

  /** The key record for a verified token; throws 401 invalid_api_key (or 503 auth_unavailable when the JWKS cannot be fetched). */
  async verify(token: string): Promise<KeyRecord> {
    const now = Date.now();
    const known = this.remembered.get(token);
    if (known && known.until > now) return known.record;
    if (token.length > this.config.maxTokenBytes) throw invalidToken('it is too long');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.config.issuer,
        audience: this.config.audience,
        algorithms: this.config.algorithms,
        clockTolerance: this.config.clockSkewSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      throw refusal(error);
    }
    const record = this.recordFrom(payload);
    if (this.config.cacheSize > 0) {
      if (this.remembered.size >= this.config.cacheSize) {
        for (const [stale, entry] of this.remembered) if (entry.until <= now || this.remembered.size >= this.config.cacheSize) this.remembered.delete(stale);
      }
      this.remembered.set(token, { record, until: Math.min(now + rememberMs, (payload.exp as number) * 1000) });
    }
    return record;
  }

  private recordFrom(payload: JWTPayload): KeyRecord {
    const claims = this.config.claims;
    const subject = payload[claims.subject];
    const tenant = payload[claims.tenant];
    if (subject !== undefined && typeof subject !== 'string') throw invalidToken(`claim ${claims.subject} is not a string`);
    if (tenant !== undefined && (typeof tenant !== 'string' || tenant.length === 0)) throw invalidToken(`claim ${claims.tenant} is not a string`);
    const record: KeyRecord = {
      id: `jwt:${(subject ?? 'anonymous').slice(0, 128)}`,
      hash: '',
      tenant: (tenant as string | undefined) ?? 'default',
      models: stringList(payload[claims.models]) ?? ['*'],
      createdAt: new Date((payload.iat ?? 0) * 1000).toISOString(),
    };
    const rpm = count(payload[claims.rpm]);
    const tpm = count(payload[claims.tpm]);
    const cap = count(payload[claims.maxTokensCap]);
    const zones = stringList(payload[claims.zones]);
    const budget = payload[claims.budget] as { amount?: unknown; period?: unknown } | undefined;
    if (rpm !== undefined) record.rpm = rpm;
    if (tpm !== undefined) record.tpm = tpm;
    if (cap !== undefined && cap > 0) record.maxTokensCap = cap;
    if (zones !== undefined) record.zones = zones;
    const guard = payload[claims.guard];
    if (guard !== null && typeof guard === 'object' && !Array.isArray(guard)) {
      const actions = Object.entries(guard as Record<string, unknown>).filter((entry): entry is [string, GuardActionName] =>
        (guardActionNames as readonly unknown[]).includes(entry[1]),
      );
      if (actions.length > 0) record.guard = Object.fromEntries(actions);
    }
    if (budget && typeof budget.amount === 'number' && budget.amount >= 0 && (budget.period === 'day' || budget.period === 'month')) {
      record.budget = { amount: budget.amount, period: budget.period };
    }
    return record;
  }
}
