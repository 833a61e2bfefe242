/**
 * The response cache around one request: decide whether it is cacheable,
 * answer hits (as JSON or a stream, as the surface serves its entries), let
 * one of several identical concurrent requests go upstream (single flight),
 * and store what came back. Any cache failure is a miss, never an error.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Route } from '../backends/registry.ts';
import type { CacheEntry } from '../cache/entry.ts';
import { entryAgeSeconds } from '../cache/entry.ts';
import { cacheKey } from '../cache/key.ts';
import { cacheDirective, isCacheable, resolveCacheMode } from '../cache/policy.ts';
import type { Flight } from '../cache/single-flight.ts';
import type { AnswerCapture } from '../proxy/codec.ts';
import { sendRawJson, writeRawHead } from '../proxy/raw-reply.ts';
import type { SwitchyardState } from '../state.ts';
import type { Usage } from '../wire/types.ts';
import type { AnswerRecorder, RequestView, Surface, SurfaceCache } from './surface.ts';

/** The cache's part in one request. */
export interface CachePlan {
  /** Answered from the cache: nothing else to do. */
  served: boolean;
  /** Captures the answer for storing (undefined when it must not be stored). */
  capture: AnswerCapture | undefined;
  /** Call once the request is over (stores the answer, releases followers). */
  finish(usage: Usage | undefined): void;
}

const noPlan: CachePlan = { served: false, capture: undefined, finish: () => undefined };
const servedPlan: CachePlan = { served: true, capture: undefined, finish: () => undefined };

/** Sends a cached answer the way the surface serves it to this request. */
function serveHit(request: FastifyRequest, reply: FastifyReply, surface: Surface, entry: CacheEntry, view: RequestView): void {
  const record = request.record;
  record.cache = 'hit';
  record.backend = 'cache';
  record.usage = entry.usage;
  record.status = 200;
  record.stream = view.stream;
  const headers = { 'x-switchyard-cache': 'HIT', age: String(entryAgeSeconds(entry)) };
  const answer = (surface.cache as SurfaceCache).serve(entry, view);
  if ('json' in answer) {
    sendRawJson(reply, headers, answer.json);
    return;
  }
  writeRawHead(reply, 200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  reply.raw.end(answer.sse);
}

/** The request as the cache sees it. */
export interface CacheRequest {
  state: SwitchyardState;
  request: FastifyRequest;
  reply: FastifyReply;
  surface: Surface;
  route: Route;
  view: RequestView;
  /**
   * The client's body (after the gateway's own edits): what the key is derived from, so two requests share an
   * entry only when the client sent the same thing (a translated surface's chat view can drop parts of it).
   */
  json: Readonly<Record<string, unknown>>;
  /** The request-limit check, running meanwhile: a hit is served only once it passed. */
  admitted: Promise<void> | undefined;
}

/**
 * Looks the request up; on a hit the answer is sent and `served` is true.
 * Otherwise returns how to capture and store the upstream answer.
 */
export function planCache(input: CacheRequest): CachePlan | Promise<CachePlan> {
  const { state, request, reply, surface, route, view } = input;
  const tenant = state.config.tenants[request.limitSubject?.tenant ?? 'default'];
  const mode = resolveCacheMode(state.config.cache.mode, route.config.cache.mode, tenant?.cache);
  const directive = cacheDirective(request.headers['cache-control']);
  // A stream whose redacted values the guard puts back (guard.restore) is neither served from nor stored in the cache:
  // a replayed stream splits placeholders across events, and the stored one would hold this request's values.
  const restoredStream = view.stream && request.record.restore !== undefined;
  if (mode === 'off' || directive === 'bypass' || restoredStream || !surface.cache || !isCacheable(view.accounting, mode, surface.cache.sampled)) {
    reply.header('x-switchyard-cache', 'BYPASS');
    return noPlan; // no promise for a request the cache cannot serve
  }
  return lookUp(input, directive);
}

async function lookUp(input: CacheRequest, directive: ReturnType<typeof cacheDirective>): Promise<CachePlan> {
  const { state, request, reply, surface, route, view, json, admitted } = input;
  const { config, cache, flights } = state;
  const surfaceCache = surface.cache as SurfaceCache; // planCache checked it is there
  const kind = surfaceCache.kind(view);
  const key = cacheKey(request.limitSubject?.tenant ?? 'default', route.name, kind, json);
  const lookup = request.record.trace?.cacheLookup();
  if (directive === 'use') {
    const entry = await cache.get(key);
    if (entry && entry.kind === kind) {
      lookup?.end('hit');
      await admitted;
      serveHit(request, reply, surface, entry, view);
      return servedPlan;
    }
  }
  let flight: Flight<CacheEntry> | undefined;
  let crossLeader: (() => void) | undefined;
  if (config.cache.singleFlight) {
    flight = flights.begin(key);
    if (flight.role === 'follower') {
      const shared = await flight.result;
      if (shared) {
        lookup?.end('shared');
        await admitted;
        serveHit(request, reply, surface, shared, view);
        return servedPlan;
      }
      flight = undefined; // the leader failed: go upstream ourselves
    } else if (state.cluster) {
      // This replica's leader takes part in the fleet's flight (see cluster/flight.ts).
      const cross = await state.cluster.flights.begin(key);
      if (cross?.role === 'leader') crossLeader = cross.done;
      else if (cross?.role === 'follower') {
        await cross.settled;
        const entry = await cache.get(key);
        if (entry && entry.kind === kind) {
          flight.complete(entry);
          await admitted;
          serveHit(request, reply, surface, entry, view);
          return servedPlan;
        }
        // The other replica's leader failed or died: this one goes upstream (and still leads its own followers).
      }
    }
  }
  lookup?.end('miss');
  request.record.cache = 'miss';
  reply.header('x-switchyard-cache', 'MISS');
  const recorder: AnswerRecorder = surfaceCache.recorder(view, config.cache.maxEntryBytes);
  return {
    served: false,
    capture: recorder,
    finish(usage) {
      const record = request.record;
      const entry = record.clientClosed || record.errorCode ? undefined : recorder.entry(usage);
      if (flight?.role === 'leader') flight.complete(entry);
      if (!entry) crossLeader?.();
      else if (crossLeader === undefined) void cache.set(key, entry, config.cache.ttlSeconds);
      else void cache.set(key, entry, config.cache.ttlSeconds).finally(crossLeader); // followers read the entry once it is there
    },
  };
}
