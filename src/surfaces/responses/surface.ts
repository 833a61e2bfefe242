/**
 * OpenAI Responses: `POST /v1/responses` and `GET /v1/responses/{id}`.
 * Passed through to runtimes that serve it (llama.cpp, vLLM), translated onto
 * chat completions for the others (translate.ts). Stateless by default; a
 * request with `store: true` is kept in the response store (Redis) so a later
 * `previous_response_id` continues it — the gateway resolves that itself and
 * sends the whole conversation upstream, so any backend can take the next turn.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { gatewayError, openaiErrorRenderer, type ErrorRenderer } from '../../errors.ts';
import { invalid, requireModel, streamFlag } from '../openai/validate.ts';
import { nativeCall, type NativeDialectSpec } from '../native.ts';
import { ownShapeCache } from '../own-shape-cache.ts';
import type { PrepareContext, Surface } from '../surface.ts';
import { chatView, translatedCall, type StreamTranslator } from '../translated.ts';
import type { ResponseStore } from './store.ts';
import { chatCompletionToResponse, ChatStreamToResponses, responsesRequestToChat, responsesUsage, type ResponsesContext } from './translate.ts';

/** What the surface reads before parsing a request. */
interface Prepared {
  id: string;
  createdAt: number;
  tenant: string;
  /** Input items of the earlier turns (previous_response_id), or undefined. */
  history: unknown[] | undefined;
  /** Keep the answer for a later previous_response_id. */
  store: boolean;
}

/** Errors: the OpenAI shape as a response; in a stream, the Responses `error` event. */
export const responsesErrors: ErrorRenderer = {
  response: openaiErrorRenderer.response,
  streamEvent: (error) => `event: error\ndata: ${JSON.stringify({ type: 'error', code: error.code, message: error.message, param: error.param })}\n\n`,
};

const terminal = /"type":\s?"(response\.(?:completed|incomplete|failed)|error)"/;

/** This request's input as items (a string is one user message). */
function inputItems(input: unknown): unknown[] {
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
  return Array.isArray(input) ? input : [];
}

function noStore(what: string) {
  return invalid(
    what === 'get' ? 'id' : 'previous_response_id',
    `${what === 'get' ? 'GET /v1/responses/{id}' : 'previous_response_id'} needs the gateway's response store, which needs \`redis\` in the configuration (answers are kept for responses.storeTtlSeconds). Without it, send the earlier turns as input items.`,
  );
}

/** Builds the Responses surface over a response store. */
export function responsesSurface(store: ResponseStore, logger: Logger): Surface {
  /** Keeps a complete answer when the request asked for it. */
  const keep = (prepared: Prepared, json: Record<string, unknown>, publicModel: string, response: Record<string, unknown>) => {
    if (!prepared.store || typeof response.id !== 'string') return;
    if (response.status !== 'completed' && response.status !== 'incomplete') return;
    const saved = { ...response, model: publicModel };
    const input = [...(prepared.history ?? []), ...inputItems(json.input)];
    store.save(prepared.tenant, response.id, { response: saved, input }).catch((error: unknown) => {
      logger.warn({ err: { message: (error as Error).message } }, 'response store: saving a response failed; a previous_response_id pointing at it will not be found');
    });
  };

  const surface: Surface = {
    name: 'responses',
    routes: [{ method: 'POST', url: '/v1/responses' }],

    prepare(json, context: PrepareContext): Prepared | Promise<Prepared> {
      const prepared: Prepared = {
        id: `resp_${randomBytes(16).toString('hex')}`,
        createdAt: Math.floor(Date.now() / 1000),
        tenant: context.tenant,
        history: undefined,
        store: json.store === true && store.keepsFor(context.tenant),
      };
      const previous = json.previous_response_id;
      if (previous === undefined || previous === null) return prepared;
      if (typeof previous !== 'string' || previous.length === 0 || previous.length > 200)
        throw invalid('previous_response_id', 'previous_response_id must be the id of an earlier response.');
      if (!store.available) throw noStore('post');
      return store.load(context.tenant, previous).then((stored) => {
        if (!stored) {
          throw invalid(
            'previous_response_id',
            `Previous response with id '${previous}' not found: it was not stored (send store: true), has expired (responses.storeTtlSeconds), or belongs to another tenant.`,
          );
        }
        const output = Array.isArray(stored.response.output) ? stored.response.output : [];
        prepared.history = [...stored.input, ...output];
        return prepared;
      });
    },

    parse(json, prepared) {
      const model = requireModel(json);
      const stream = streamFlag(json);
      const history = (prepared as Prepared | undefined)?.history;
      const input = json.input;
      if (history === undefined && typeof input !== 'string' && !Array.isArray(input)) {
        throw invalid('input', 'input is required: a string, or a list of input items (messages, function_call_output, ...).');
      }
      // The chat request it maps to: what estimates, limits, cache keys and cost read, and the translated body.
      const { accounting, untranslatable } = chatView(json, () => responsesRequestToChat(json, history), {
        text: [json.instructions, ...(history ?? []), json.input],
        maxTokens: json.max_output_tokens,
      });
      return { model, stream, streamUsage: false, accounting, promptParam: 'input', untranslatable };
    },

    capOutput(json, cap) {
      if (cap === undefined) return undefined;
      const requested = json.max_output_tokens;
      if (typeof requested === 'number' && requested <= cap) return undefined;
      return { field: 'max_output_tokens', value: cap };
    },

    translates: true,

    plan(request, target, mode) {
      const { view, json } = request;
      const prepared = request.prepared as Prepared;
      const backendId = target.backend.id;
      if (mode === 'translate') {
        if (view.untranslatable) throw view.untranslatable;
        const context: ResponsesContext = { id: prepared.id, createdAt: prepared.createdAt, model: view.model, request: json, store: prepared.store };
        return translatedCall(view.accounting as Record<string, unknown>, target, view.stream, {
          backendId,
          promptParam: 'input',
          translation: {
            name: 'responses->chat',
            answer: (chat) => chatCompletionToResponse(chat, context),
            stream: () => keptStream(new ChatStreamToResponses(context), (response) => keep(prepared, json, view.model, response)),
            completed: (response) => keep(prepared, json, view.model, response),
          },
        });
      }
      const spec: NativeDialectSpec = {
        answerUsage: (answer) => responsesUsage(answer),
        interesting: (data) => terminal.test(data),
        readEvent(event) {
          if (event.type === 'error') {
            const message = typeof event.message === 'string' ? event.message : 'The backend reported an error in the stream.';
            return { error: gatewayError('SWY_ERR_UPSTREAM', { origin: 'upstream', message: `Backend ${backendId}: ${message}` }) };
          }
          return { usage: responsesUsage(event), end: true };
        },
        isDelta: (data) => data.includes('.delta"'),
      };
      if (prepared.store) {
        // Only a request that asked to be kept pays for reading the final answer back.
        spec.completed = (event) => {
          const response = event.response;
          if (response && typeof response === 'object') keep(prepared, json, view.model, response as Record<string, unknown>);
        };
        spec.answered = (answer) => keep(prepared, json, view.model, answer);
      }
      // The runtime gets the whole conversation: the gateway, not the runtime, holds earlier turns.
      const raw = prepared.history === undefined ? request.raw : JSON.stringify({ ...withoutPrevious(json), input: [...prepared.history, ...inputItems(json.input)] });
      // A tenant whose data policy keeps no answers (tenants.<t>.responses.store: false): the runtime must not keep one either.
      const edits = json.store === true && !prepared.store && store.available ? [{ key: 'store', value: 'false' }] : undefined;
      return nativeCall(target, { path: '/v1/responses', raw, clientModel: view.model, clientStream: view.stream, promptParam: 'input', spec, errors: responsesErrors, edits });
    },

    cache: ownShapeCache('responses'),
    errors: responsesErrors,

    register(app: FastifyInstance) {
      app.get('/v1/responses/:id', { config: { access: 'client', errorRenderer: responsesErrors } }, async (request: FastifyRequest) => {
        const id = (request.params as { id: string }).id;
        if (!store.available) throw noStore('get');
        const stored = await store.load(request.limitSubject?.tenant ?? 'default', id);
        if (!stored) {
          throw gatewayError('SWY_ERR_RESPONSE_NOT_FOUND', {
            param: 'id',
            message: `Response with id '${id.slice(0, 200)}' not found: it was not stored (send store: true), has expired, or belongs to another tenant.`,
          });
        }
        return stored.response;
      });
    },
  };
  return surface;
}

function withoutPrevious(json: Record<string, unknown>): Record<string, unknown> {
  const { previous_response_id: _previous, ...rest } = json;
  return rest;
}

/** A stream translator that hands the final Response (from its last event) to `kept`. */
function keptStream(translator: ChatStreamToResponses, kept: (response: Record<string, unknown>) => void): StreamTranslator {
  return {
    push: (chunk) => translator.push(chunk),
    fail: (error) => translator.fail(error),
    finish() {
      const text = translator.finish();
      const last = text.lastIndexOf('\ndata: ');
      if (last !== -1) {
        try {
          const event = JSON.parse(text.slice(last + 7).trim()) as { response?: Record<string, unknown> };
          if (event.response) kept(event.response);
        } catch {
          // not a response event: nothing to keep
        }
      }
      return text;
    },
  };
}
