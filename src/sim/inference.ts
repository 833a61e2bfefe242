// The inference routes: read and parse the body, validate like the runtime, plan
// the answer, inject the configured failures, and hand over to a Job.

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Flavor, Reply, Route } from './flavor.ts';
import type { EngineContext, JobOutput } from './generation.ts';
import { Job } from './generation.ts';
import { embeddingToBase64, generateEmbedding, hashNumber } from './generate.ts';
import { buildChatPlan, buildCompletionPlan, chatPromptStats, type PrefixCache, textPromptStats } from './plan.ts';
import { rerankOutput } from './rerank.ts';
import { type EmbeddingFields, type InferenceFields, isReply, parseInference } from './request.ts';
import { parseCountTokens, parseMessages, parseRerank, parseResponses } from './request-surfaces.ts';
import type { SimulatedRequest } from './types.ts';

export interface InferenceContext extends EngineContext {
  cache: PrefixCache;
  failRandom(): number;
  recordRequest(request: SimulatedRequest): void;
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Writes a complete answer; contentType '' sends none (vLLM's empty /health). */
export function sendReply(ctx: EngineContext, response: ServerResponse, reply: Reply, headers: OutgoingHttpHeaders): void {
  const contentType = reply.contentType ?? ctx.flavor.jsonType;
  const out: OutgoingHttpHeaders = { ...headers, 'content-length': Buffer.byteLength(reply.body) };
  if (reply.status >= 400) Object.assign(out, ctx.flavor.errorHeaders);
  if (contentType !== '') out['content-type'] = contentType;
  response.writeHead(reply.status, out);
  response.end(reply.body);
}

function fail(ctx: EngineContext, response: ServerResponse, reply: Reply, headers: OutgoingHttpHeaders): void {
  ctx.counters.failed++;
  sendReply(ctx, response, reply, headers);
}

function embeddingOutput(ctx: InferenceContext, fields: EmbeddingFields, requestId: string | undefined): JobOutput | Reply {
  const { flavor, options } = ctx;
  let promptTokens = 0;
  let cachedTokens = 0;
  const seeds: number[] = [];
  for (const input of fields.inputs) {
    if (input.length === 0) return flavor.error('invalid', 'Input content cannot be empty');
    const stats = textPromptStats(input, ctx.cache, flavor.cacheBlockTokens);
    const tooLong = flavor.checkEmbeddingContext(stats.tokens, options);
    if (tooLong !== undefined) return tooLong;
    promptTokens += stats.tokens;
    cachedTokens += stats.cached;
    seeds.push(hashNumber(stats.hash, fields.seed ?? options.seed));
  }
  const id = flavor.completionId('embeddings', requestId);
  return {
    promptTokens,
    cachedTokens,
    body: () => {
      const embeddings = seeds.map((seed) => {
        const vector = generateEmbedding(seed, options.embeddingDim);
        return fields.base64 ? embeddingToBase64(vector) : vector;
      });
      return flavor.renderEmbeddings(fields.model, id, embeddings, promptTokens);
    },
  };
}

function parseFields(route: Route, path: string, body: unknown, flavor: Flavor): InferenceFields | Reply {
  switch (route) {
    case 'responses':
      return parseResponses(body, flavor);
    case 'messages':
      return parseMessages(body, flavor);
    case 'count-tokens':
      return parseCountTokens(path.startsWith('/v1/messages') ? 'messages' : 'responses', body, flavor);
    case 'rerank':
      return parseRerank(body, flavor);
    default:
      return parseInference(route, body, flavor);
  }
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

function handleBody(ctx: InferenceContext, route: Route, path: string, request: IncomingMessage, response: ServerResponse, headers: OutgoingHttpHeaders, text: string): void {
  const { flavor, options } = ctx;
  const parsed = parseJson(text);
  ctx.recordRequest({ path, headers: request.headers, body: parsed.ok ? parsed.value : text });
  if (!parsed.ok) return fail(ctx, response, flavor.malformedJson(text, parsed.error), headers);

  const surfaces = flavor.surfaces;
  if (route === 'rerank' && !options.reranking && surfaces !== undefined) return fail(ctx, response, surfaces.rerankDisabled(), headers);
  const fields = parseFields(route, path, parsed.value, flavor);
  if (isReply(fields)) return fail(ctx, response, fields, headers);
  // Past parsing, vLLM answers the Messages surface's errors in Anthropic's shape (llama.cpp keeps its own).
  const failWith = (reply: Reply): void => fail(ctx, response, route === 'messages' && surfaces !== undefined ? surfaces.messagesError(reply) : reply, headers);
  const wrongModel = flavor.checkModel(fields.model, options);
  if (wrongModel !== undefined) return failWith(wrongModel);

  if (fields.endpoint === 'count-tokens') {
    // Rendering the prompt only: no slot, no prefix cache.
    const tokens = chatPromptStats(fields.chat, undefined, flavor.cacheBlockTokens).tokens;
    if (surfaces === undefined) return fail(ctx, response, flavor.notFound(), headers);
    ctx.counters.completed++;
    sendReply(ctx, response, surfaces.countTokens(fields.surface, tokens), headers);
    return;
  }

  const requestId = typeof request.headers['x-request-id'] === 'string' ? request.headers['x-request-id'] : undefined;
  let output: JobOutput | Reply;
  if (fields.endpoint === 'embeddings') output = embeddingOutput(ctx, fields, requestId);
  else if (fields.endpoint === 'rerank') output = surfaces !== undefined ? rerankOutput(surfaces, fields, requestId) : flavor.notFound();
  else {
    const planContext = { flavor, options, cache: ctx.cache, requestIdHeader: requestId };
    const plan = fields.endpoint === 'completions' ? buildCompletionPlan(fields, planContext) : buildChatPlan(fields, planContext);
    output = isReply(plan) ? (fields.stream ? (flavor.errorInStream?.(plan) ?? plan) : plan) : { plan, stream: fields.stream };
  }
  if (isReply(output)) return failWith(output);

  let dieMidStream = false;
  if (options.failRate > 0 && ctx.failRandom() < options.failRate) {
    switch (options.failMode) {
      case '500':
      case '429':
        return failWith(flavor.injectedFailure(options.failMode === '429' ? 429 : 500));
      case 'reset':
        ctx.counters.failed++;
        request.socket.resetAndDestroy();
        return;
      case 'hang':
        // Never answer and hold no slot; the request only ends when the client gives up.
        ctx.counters.failed++;
        response.on('close', () => {
          ctx.counters.cancelled++;
          ctx.metrics.cancelled++;
        });
        return;
      case 'die-mid-stream':
        dieMidStream = true;
        break;
    }
  }
  new Job(ctx, request, response, output, headers, dieMidStream).start();
}

/** Entry point for every POST route with a JSON body: chat, completions, embeddings, Responses, Messages, count_tokens, rerank. */
export function handleInference(ctx: InferenceContext, route: Route, path: string, request: IncomingMessage, response: ServerResponse, headers: OutgoingHttpHeaders): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  request.on('data', (chunk: Buffer) => {
    if (tooLarge) return;
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      tooLarge = true;
      fail(ctx, response, { status: 413, body: '{"error":"Request body too large"}' }, { ...headers, connection: 'close' });
      return;
    }
    chunks.push(chunk);
  });
  request.on('end', () => {
    if (tooLarge || response.destroyed) return;
    const text = chunks.length === 1 ? (chunks[0]?.toString('utf8') ?? '') : Buffer.concat(chunks).toString('utf8');
    try {
      handleBody(ctx, route, path, request, response, headers, text);
    } catch (error) {
      // Both runtimes answer a body their parser cannot take (JSON nested thousands of levels deep, which
      // overflows a recursive walk here as Python's RecursionError does there) with a 400, and survive it.
      if (response.headersSent) {
        response.destroy();
        return;
      }
      const deep = error instanceof RangeError;
      const message = deep ? 'The request is nested too deeply.' : 'Internal server error';
      const status = deep ? 400 : 500;
      fail(ctx, response, { status, body: JSON.stringify({ error: { message, type: deep ? 'BadRequestError' : 'InternalServerError', param: null, code: status } }) }, headers);
    }
  });
}
