/**
 * Prefix-cache isolation between tenants (`isolation: tenant`). A runtime that shares its prefix (KV) cache
 * across requests leaks timing: a request whose prompt starts like another tenant's gets its first token
 * sooner, which lets a tenant test guesses about another's prompts. vLLM and SGLang share cached blocks only
 * between requests with the same `cache_salt`; the gateway sets it to a per-tenant value that clients cannot
 * learn or choose (HMAC-SHA256 of the tenant under `isolation.secret`, replacing any `cache_salt` the client
 * sent), so one tenant's requests reuse only its own prefixes. llama.cpp has no salt: isolated requests there
 * carry `cache_prompt: false` (see the kind). Salts are the same on every replica with the same secret, so a
 * tenant keeps its cache hits whichever replica routes it; without a configured secret each process draws a
 * random one (still isolated, but a tenant's prefixes are not reused across replicas or restarts).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Route } from '../backends/registry.ts';
import type { Logger } from 'pino';
import type { SwitchyardConfig } from '../config/schema.ts';

/** Tenants whose salts are kept; beyond it the memo starts over (salts are cheap to derive again). */
const memoLimit = 10_000;

export class TenantSalts {
  readonly #secret: string;
  readonly #mode: 'none' | 'tenant';
  readonly #memo = new Map<string, string>();
  /** No isolation.secret was configured: the secret is this process's own. */
  readonly randomSecret: boolean;

  constructor(config: SwitchyardConfig['isolation']) {
    this.randomSecret = config.secret === undefined;
    this.#secret = config.secret ?? randomBytes(32).toString('base64url');
    this.#mode = config.mode;
  }

  /** The salt for this request, or undefined when its model does not isolate tenants. */
  saltFor(route: Route, tenant: string | undefined): string | undefined {
    if ((route.config.isolation ?? this.#mode) !== 'tenant') return undefined;
    const name = tenant ?? 'default';
    let salt = this.#memo.get(name);
    if (salt === undefined) {
      salt = createHmac('sha256', this.#secret).update(`switchyard prefix-cache salt\u0000${name}`).digest('base64url');
      if (this.#memo.size >= memoLimit) this.#memo.clear();
      this.#memo.set(name, salt);
    }
    return salt;
  }
}

/** The per-tenant prefix-cache salts; says once at startup when isolated models use a process-local secret. */
export function tenantSalts(config: SwitchyardConfig, logger: Logger): TenantSalts {
  const salts = new TenantSalts(config.isolation);
  const isolates = config.models.some((model) => (model.isolation ?? config.isolation.mode) === 'tenant');
  if (isolates && salts.randomSecret) {
    logger.warn("isolation.secret is not set: prefix-cache salts use a random secret of this process, so replicas do not share a tenant's cached prefixes");
  }
  return salts;
}
