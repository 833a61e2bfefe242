/** Request authentication and model permission, framework-free. */
import type { KeyRecord } from './api-keys.ts';
import { apiKeyFromHeaders, hashApiKey, hashesEqual } from './api-keys.ts';
import { gatewayError, type GatewayError } from '../errors.ts';
import type { AuthConfig } from './config.ts';
import { JwtVerifier, looksLikeJwt } from './jwt.ts';
import { compileModelGlobs, type ModelMatcher } from './glob.ts';
import type { KeyStore } from './key-store.ts';

/**
 * The key record for the request's secret. Throws 401 invalid_api_key when
 * the secret is missing, unknown or revoked (same message for unknown and
 * revoked, nothing about the secret), 503 auth_unavailable when Redis is down
 * and the key is not known locally.
 * The lookup is by hash; the final comparison is constant-time.
 */
export async function authenticate(store: KeyStore, headers: Record<string, string | string[] | undefined>): Promise<KeyRecord> {
  const secret = apiKeyFromHeaders(headers);
  if (!secret) {
    throw gatewayError('SWY_ERR_INVALID_API_KEY', {
      message: "You didn't provide an API key. Send it as `Authorization: Bearer sk-swy-…`.",
    });
  }
  const hash = hashApiKey(secret);
  const record = await store.findByHash(hash);
  if (!record || !hashesEqual(record.hash, hash) || record.revoked) throw gatewayError('SWY_ERR_INVALID_API_KEY');
  return record;
}

/**
 * The authentication of `auth.mode`: API keys, bearer JWTs (jwt.ts), or
 * either (`keys+jwt`: a credential shaped like a JWT is verified as one,
 * anything else is looked up as a key).
 */
export function createAuthenticator(auth: AuthConfig, store: KeyStore): (headers: Record<string, string | string[] | undefined>) => Promise<KeyRecord> {
  if (auth.mode !== 'jwt' && auth.mode !== 'keys+jwt') return (headers) => authenticate(store, headers);
  if (!auth.jwt) throw new Error(`auth.mode ${auth.mode} needs auth.jwt`);
  const verifier = new JwtVerifier(auth.jwt);
  const keysToo = auth.mode === 'keys+jwt';
  return async (headers) => {
    const credential = apiKeyFromHeaders(headers);
    if (credential !== undefined && looksLikeJwt(credential)) return verifier.verify(credential);
    if (keysToo) return authenticate(store, headers);
    throw gatewayError('SWY_ERR_INVALID_API_KEY', {
      message: credential === undefined ? "You didn't provide a bearer token. Send it as `Authorization: Bearer <JWT>`." : 'The bearer token is not accepted: it is not a JWT.',
    });
  };
}

const matchers = new Map<string, ModelMatcher>();

/** True when the key may use the public model (globs compiled once per distinct list). */
export function modelAllowed(record: Pick<KeyRecord, 'models'>, publicModel: string): boolean {
  const id = record.models.join('\u0000');
  let matcher = matchers.get(id);
  if (!matcher) {
    if (matchers.size > 1_000) matchers.clear();
    matcher = compileModelGlobs(record.models);
    matchers.set(id, matcher);
  }
  return matcher(publicModel);
}

/** Throws 403 model_not_allowed when the key may not use the model. */
export function assertModelAllowed(record: Pick<KeyRecord, 'models'>, publicModel: string): void {
  if (!modelAllowed(record, publicModel)) {
    const error: GatewayError = gatewayError('SWY_ERR_MODEL_NOT_ALLOWED', {
      message: `This API key may not use the model \`${publicModel}\`. GET /v1/models lists the models; ask the operator to allow it.`,
      param: 'model',
    });
    throw error;
  }
}

/**
 * The `max_tokens` to enforce with the key's cap: the client's value lowered
 * to the cap, or the cap when the client sent none. `field` says which body
 * field to set (chat prefers `max_completion_tokens` when the client used it).
 * Undefined when there is no cap or the client's value is within it.
 */
export function cappedMaxTokens(body: Record<string, unknown>, cap: number | undefined): { field: 'max_tokens' | 'max_completion_tokens'; value: number } | undefined {
  if (cap === undefined) return undefined;
  const field = typeof body.max_completion_tokens === 'number' ? 'max_completion_tokens' : 'max_tokens';
  const requested = body[field];
  if (typeof requested === 'number' && requested <= cap) return undefined;
  return { field, value: cap };
}
