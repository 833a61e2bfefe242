/**
 * The inference pipeline, one for every surface: read the body through the
 * surface into the common view, resolve the model, apply the key's rules,
 * then admission (requests per minute), the response cache, token limits
 * and budgets, routing and the upstream attempts, cost and reporting. Only
 * the surface knows its wire shape; nothing here branches on which one it is.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ParsedBody } from '../api/body.ts';
import type { Route } from '../backends/registry.ts';
import { gatewayError } from '../errors.ts';
import { assertModelAllowed, modelAllowed } from '../limits/authenticate.ts';
import { contextNeed, defaultCompletionBudget, estimatePromptTokens, requestedCompletionTokens } from '../proxy/estimate.ts';
import { forward } from '../proxy/forward.ts';
import { priorityOf } from '../routing/admission.ts';
import { affinityKeyFor } from '../routing/affinity.ts';
import { policyNames, type PolicyName } from '../routing/types.ts';
import type { SwitchyardState } from '../state.ts';
import { spliceTopLevel } from '../wire/json-splice.ts';
import { planCache } from './cached.ts';
import { costOf, meter, type Settle } from './metered.ts';
import { streamFilterFor } from '../guard/answer.ts';
import type { Surface } from './surface.ts';
import type { SurfaceSupport } from './support.ts';

const policies = new Set<PolicyName>(policyNames);

/** The policy for this request: the route's, or the one `x-switchyard-policy` picks among those allowed. */
function policyFor(request: FastifyRequest, route: Route): PolicyName {
  const header = request.headers['x-switchyard-policy'];
  if (header === undefined) return route.config.policy;
  const allowed = route.config.allowedPolicies ?? [...policies];
  if (typeof header === 'string' && policies.has(header as PolicyName) && allowed.includes(header as PolicyName)) return header as PolicyName;
  throw gatewayError('SWY_ERR_INVALID_PARAM', {
    param: 'x-switchyard-policy',
    message: `x-switchyard-policy must be one of ${allowed.join(', ')} for model ${route.name}.`,
  });
}

/** The zones of the route's backends that the request may use (zone guard policies apply to these). */
function reachableZones(route: Route, allowed: ReadonlySet<string> | undefined): Set<string> {
  const zones = new Set<string>();
  for (const target of route.targets) if (allowed === undefined || allowed.has(target.backend.zone)) zones.add(target.backend.zone);
  return zones;
}

/** Counts the request against its requests-per-minute limit (the access plugin's `admitRequest`). */
type Admit = (request: FastifyRequest, reply: FastifyReply) => Promise<void> | undefined;

/** The route handler of every inference route of `surface`. */
export function inferenceHandler(state: SwitchyardState, admitRequest: Admit, surface: Surface, support: SurfaceSupport) {
  const registry = state.backends;
  const router = state.router;
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const body = request.body as ParsedBody | undefined;
    if (!body) throw gatewayError('SWY_ERR_INVALID_JSON', { message: 'The request has no body. Send a JSON object.' });
    const record = request.record;
    record.endpoint = surface.name;
    let { raw, json } = body;
    const pending = surface.prepare?.(json, { tenant: request.limitSubject?.tenant ?? 'default' });
    const prepared = pending instanceof Promise ? await pending : pending;
    let view = surface.parse(json, prepared);
    const requestedModel = view.model;
    const route = registry.resolve(requestedModel);
    if (!route) {
      throw gatewayError('SWY_ERR_MODEL_NOT_FOUND', {
        param: 'model',
        message: `The model \`${requestedModel.slice(0, 200)}\` does not exist on this gateway. GET /v1/models lists the models you can use.`,
      });
    }
    record.model = route.name;
    const key = request.apiKey;
    if (key) {
      if (!modelAllowed(key, requestedModel)) assertModelAllowed(key, route.name);
      const cap = surface.capOutput(json, key.maxTokensCap);
      if (cap) {
        raw = spliceTopLevel(raw, [{ key: cap.field, value: String(cap.value), present: json[cap.field] !== undefined }]);
        json = { ...json, [cap.field]: cap.value };
        view = surface.parse(json, prepared);
      }
    }
    // The guard sees the body as it would leave: after the key's cap, before the cache and any backend.
    let sensitive = false;
    if (state.guard) {
      const tenant = request.limitSubject?.tenant ?? 'default';
      const verdict = state.guard.inspect(raw, tenant, key, state.guard.zonePolicies ? reachableZones(route, state.zones.allowed(key, tenant, false)) : undefined);
      if (verdict) {
        record.guard = verdict.verdicts;
        for (const [category, action] of verdict.found) state.metrics.guardFindings.labels(category, action).inc();
        if (verdict.refusal) throw verdict.refusal;
        sensitive = verdict.confine;
        if (verdict.raw !== undefined) {
          record.restore = verdict.placeholders;
          raw = verdict.raw;
          json = JSON.parse(raw) as Record<string, unknown>;
          view = surface.parse(json, prepared);
        }
      }
    }
    const accounting = view.accounting;
    // The common case (no limits, nothing cacheable) runs without a single await up to the upstream call.
    const admitted = admitRequest(request, reply);
    admitted?.catch(() => undefined); // awaited below; this only keeps an early refusal from counting as unhandled
    let settle: Settle | undefined;
    let cacheFinish: ((usage: typeof record.usage) => void) | undefined;
    try {
      const planned = planCache({ state, request, reply, surface, route, view, json, admitted });
      const cache = planned instanceof Promise ? await planned : planned;
      if (cache.served) return;
      cacheFinish = cache.finish;
      const metered = meter(state, request, reply, route, accounting);
      if (admitted === undefined && !(metered instanceof Promise)) settle = metered;
      else {
        // The request limit and the token reservation go to Redis together.
        const [admission, metering] = await Promise.allSettled([admitted, metered]);
        if (metering.status === 'fulfilled') settle = metering.value; // released in finally if we stop here
        if (admission.status === 'rejected') throw admission.reason;
        if (metering.status === 'rejected') throw metering.reason;
      }
      const affinity = route.config.affinity;
      await forward(
        reply,
        { surface, view, route, raw, json, record, prepared },
        {
          router,
          policy: policyFor(request, route),
          priority: priorityOf(request.headers['x-switchyard-priority']),
          affinityKey: affinity.enabled ? affinityKeyFor(accounting, affinity) : undefined,
          promptTokens: estimatePromptTokens(accounting),
          maxTokens: requestedCompletionTokens(accounting, defaultCompletionBudget),
          context: contextNeed(accounting),
          capture: cache.capture,
          support,
          inFlight: state.inFlight,
          salt: state.salts.saltFor(route, request.limitSubject?.tenant),
          streamFilter: view.stream && state.guard ? streamFilterFor(state.guard, state.metrics, record) : undefined,
          zones: state.zones.allowed(key, request.limitSubject?.tenant ?? 'default', sensitive),
        },
      );
    } finally {
      if (cacheFinish) {
        record.cost = costOf(route, record, accounting);
        cacheFinish(record.usage);
      }
      if (settle) void settle();
      // Answers written past Fastify (cache hits, upstream answers, departed clients) never reach onResponse:
      // they are reported here, with their cost. Errors thrown from here are sent by Fastify and reported there.
      if (record.rawAnswer) state.report(request);
    }
  };
}
