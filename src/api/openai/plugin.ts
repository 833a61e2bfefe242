/**
 * The OpenAI-compatible endpoints: chat completions, completions, embeddings
 * and the model list. Validation is limited to what the gateway needs.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { gatewayError } from '../../errors.ts';
import { assertModelAllowed, cappedMaxTokens, modelAllowed } from '../../limits/authenticate.ts';
import { forward } from '../../proxy/forward.ts';
import { spliceTopLevel } from '../../proxy/json-splice.ts';
import { planCache } from './cached.ts';
import { costOf, meter, type Settle } from './metered.ts';
import { priorityOf } from '../../routing/admission.ts';
import { affinityKeyFor } from '../../routing/affinity.ts';
import { defaultCompletionBudget, estimatePromptTokens, requestedCompletionTokens } from '../../proxy/estimate.ts';
import type { PolicyName } from '../../routing/types.ts';
import type { Endpoint } from '../../proxy/record.ts';
import type { Route } from '../../backends/registry.ts';
import type { ParsedBody } from '../body.ts';
import { promptParams, validateBody } from './validate.ts';

function modelObject(id: string, created: number, ownedBy: string) {
  return { id, object: 'model', created, owned_by: ownedBy };
}

const policies = new Set<PolicyName>(['least-loaded', 'cheapest', 'fastest', 'balanced', 'weighted']);

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

async function openaiRoutes(app: FastifyInstance): Promise<void> {
  const state = app.switchyard;
  const registry = state.backends;
  const router = state.router;
  const created = Math.floor(Date.now() / 1000);

  const handler = (endpoint: Endpoint) => async (request: FastifyRequest, reply: FastifyReply) => {
    const body = request.body as ParsedBody | undefined;
    if (!body) throw gatewayError('SWY_ERR_INVALID_JSON', { message: 'The request has no body. Send a JSON object.' });
    const record = request.record;
    record.endpoint = endpoint;
    const requestedModel = validateBody(endpoint, body.json);
    const route = registry.resolve(requestedModel);
    if (!route) {
      throw gatewayError('SWY_ERR_MODEL_NOT_FOUND', {
        param: 'model',
        message: `The model \`${requestedModel.slice(0, 200)}\` does not exist on this gateway. GET /v1/models lists the models you can use.`,
      });
    }
    record.model = route.name;
    let { raw, json } = body;
    const key = request.apiKey;
    if (key) {
      if (!modelAllowed(key, requestedModel)) assertModelAllowed(key, route.name);
      const cap = cappedMaxTokens(json, key.maxTokensCap);
      if (cap) {
        json = { ...json, [cap.field]: cap.value };
        raw = spliceTopLevel(raw, [{ key: cap.field, value: String(cap.value), present: body.json[cap.field] !== undefined }]);
      }
    }
    // The common case (no limits, nothing cacheable) runs without a single await up to the upstream call.
    const admitted = state.admitRequest(request, reply);
    admitted?.catch(() => undefined); // awaited below; this only keeps an early refusal from counting as unhandled
    const planned = planCache({ state, request, reply, endpoint, route, requestedModel, json, admitted });
    const cache = planned instanceof Promise ? await planned : planned;
    if (cache.served) {
      state.report(request); // answered past Fastify's send (see serveHit): no onResponse
      return;
    }
    let settle: Settle | undefined;
    let hijacked = false;
    try {
      const metered = meter(state, request, reply, route, json);
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
        { endpoint, route, requestedModel, raw, json, promptParam: promptParams[endpoint], record },
        {
          router,
          policy: policyFor(request, route),
          priority: priorityOf(request.headers['x-switchyard-priority']),
          affinityKey: affinity.enabled ? affinityKeyFor(json, affinity) : undefined,
          promptTokens: estimatePromptTokens(json),
          maxTokens: requestedCompletionTokens(json, defaultCompletionBudget),
          capture: cache.capture,
        },
        () => {
          hijacked = true;
        },
      );
    } finally {
      record.cost = costOf(route, record, json);
      cache.finish(record.usage);
      if (settle) void settle();
      // Answers written past Fastify (and requests whose client left) bypass onResponse: report them here, with their cost.
      if (hijacked) state.report(request);
    }
  };

  app.post('/v1/chat/completions', handler('chat'));
  app.post('/v1/completions', handler('completion'));
  app.post('/v1/embeddings', handler('embedding'));

  app.get('/v1/models', async () => ({
    object: 'list',
    data: registry.routeList.flatMap((route) =>
      [route.name, ...route.config.aliases].map((id) => modelObject(id, created, route.config.ownedBy)),
    ),
  }));

  app.get('/v1/models/*', async (request) => {
    const id = (request.params as { '*': string })['*'];
    const route = registry.resolve(id);
    if (!route) {
      throw gatewayError('SWY_ERR_MODEL_NOT_FOUND', { param: 'model', message: `The model \`${id.slice(0, 200)}\` does not exist on this gateway.` });
    }
    return modelObject(id, created, route.config.ownedBy);
  });
}

export const openaiPlugin = fastifyPlugin(openaiRoutes, { name: 'switchyard-openai' });
