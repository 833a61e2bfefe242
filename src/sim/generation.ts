// One inference request from admission to the last byte: slot, time to first
// token, paced tokens, and cancellation the moment the client goes away (queued,
// before the first token, mid-stream or while a non-streamed answer is pending).
// With ttft 0 and no token rate everything runs synchronously in the request's
// own tick, which keeps a direct benchmark far above 10k requests/s.

import type { Socket } from 'node:net';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Flavor, Plan, SimView, SurfaceRenderer, Timing } from './flavor.ts';
import type { EngineFinish, MetricsState } from './metrics-state.ts';
import type { ResolvedOptions } from './options.ts';
import type { SlotScheduler, SlotWaiter } from './scheduler.ts';

/** Mutable counters behind Simulator.stats(). */
export interface Counters {
  requests: number;
  completed: number;
  cancelled: number;
  failed: number;
}

export interface EngineContext {
  options: ResolvedOptions;
  flavor: Flavor;
  scheduler: SlotScheduler;
  metrics: MetricsState;
  counters: Counters;
  /** Jobs holding a slot, for KV usage, /slots and the load report. */
  running: Set<Job>;
  view: SimView;
  nextTaskId(): number;
  /** Requests in progress on a connection (for closesAfterStream). */
  socketBusy?(socket: Socket): number;
}

/** What a job produces: a plan to stream or render, or (embeddings) a body rendered at the end. */
export type JobOutput = { plan: Plan; stream: boolean } | { body: () => string; promptTokens: number; cachedTokens: number };

const now = (): number => performance.now();

/**
 * The order in which the tokens of several choices are streamed: round robin, as the
 * runtimes decode the choices of one request side by side. Pairs of (choice, piece).
 */
function interleave(plan: Plan): Int32Array {
  const order = new Int32Array(plan.completionTokens * 2);
  let at = 0;
  for (let piece = 0; at < order.length; piece++) {
    for (let choice = 0; choice < plan.choices.length; choice++) {
      if (piece < (plan.choices[choice]?.pieces.length ?? 0)) {
        order[at++] = choice;
        order[at++] = piece;
      }
    }
  }
  return order;
}

/** The renderer of a Responses / Messages plan; chat and completions render through the flavour itself. */
function surfaceRenderer(flavor: Flavor, plan: Plan | undefined): SurfaceRenderer | undefined {
  if (plan === undefined || plan.kind === 'chat' || plan.kind === 'completions') return undefined;
  return flavor.surfaces?.[plan.kind];
}

export class Job implements SlotWaiter {
  queued = false;
  slotId = -1;
  readonly taskId: number;
  private readonly ctx: EngineContext;
  private readonly request: IncomingMessage;
  private readonly response: ServerResponse;
  private readonly output: JobOutput;
  private readonly headers: OutgoingHttpHeaders;
  private readonly dieMidStream: boolean;
  private readonly timing: Timing;
  private readonly surface: SurfaceRenderer | undefined;
  private schedule: Int32Array | undefined;
  private state: 'new' | 'queued' | 'running' | 'done' = 'new';
  private timer: NodeJS.Timeout | undefined;
  private emitted = 0;
  private dueAt = 0;
  private prefilled = false;
  private readonly onClose = (): void => {
    if (this.state !== 'done' && !this.response.writableFinished) this.cancel();
  };

  constructor(ctx: EngineContext, request: IncomingMessage, response: ServerResponse, output: JobOutput, headers: OutgoingHttpHeaders, dieMidStream: boolean) {
    this.ctx = ctx;
    this.request = request;
    this.response = response;
    this.output = output;
    this.headers = headers;
    this.dieMidStream = dieMidStream;
    this.taskId = ctx.nextTaskId();
    this.surface = surfaceRenderer(ctx.flavor, 'plan' in output ? output.plan : undefined);
    const arrived = now();
    this.timing = { arrivedAt: arrived, startedAt: arrived, firstTokenAt: arrived, endedAt: arrived };
  }

  private get plan(): Plan | undefined {
    return 'plan' in this.output ? this.output.plan : undefined;
  }

  get streaming(): boolean {
    return 'plan' in this.output && this.output.stream;
  }

  get promptTokens(): number {
    return 'plan' in this.output ? this.output.plan.promptTokens : this.output.promptTokens;
  }

  get cachedTokens(): number {
    return 'plan' in this.output ? this.output.plan.cachedTokens : this.output.cachedTokens;
  }

  /** Tokens this request occupies in the (notional) KV cache right now. */
  get liveTokens(): number {
    return this.promptTokens + this.generatedSoFar();
  }

  get totalTokens(): number {
    return this.plan?.completionTokens ?? 0;
  }

  generatedSoFar(): number {
    if (!this.prefilled) return 0;
    if (this.streaming) return this.emitted;
    const total = this.totalTokens;
    const interval = this.interval();
    if (interval === 0) return total;
    return Math.min(total, 1 + Math.floor((now() - this.timing.firstTokenAt) / interval));
  }

  start(): void {
    this.response.on('close', this.onClose);
    if (this.streaming && this.ctx.flavor.headersBeforeFirstToken) {
      this.response.writeHead(200, this.sseHeaders());
      const plan = this.plan;
      const opening = plan !== undefined ? this.surface?.start?.(plan) : undefined;
      // vLLM's Responses stream announces the response before generation starts.
      if (opening !== undefined && opening !== '') this.response.write(opening);
      else this.response.flushHeaders();
    }
    this.state = 'queued';
    this.ctx.scheduler.acquire(this);
  }

  grant(slotId: number): void {
    if (this.state !== 'queued') {
      // Granted after the client left (cannot happen: cancel() dequeues) - give the slot back.
      this.ctx.scheduler.release(slotId);
      return;
    }
    this.state = 'running';
    this.slotId = slotId;
    this.ctx.running.add(this);
    this.timing.startedAt = now();
    const options = this.ctx.options;
    // Prefill of the uncached part of the prompt, as real runtimes do (TTFT grows with prompt length).
    const prefill = options.prefillTokensPerSecond > 0 ? ((this.promptTokens - this.cachedTokens) * 1000) / options.prefillTokensPerSecond : 0;
    const ttft = options.ttftMs + prefill;
    if (ttft > 0) this.timer = setTimeout(() => this.firstToken(), ttft);
    else this.firstToken();
  }

  /** Time per token now: a batch shared by more running sequences decodes each of them more slowly. */
  private interval(): number {
    const options = this.ctx.options;
    const rate = options.tokensPerSecond;
    if (!(rate > 0)) return 0;
    return (1000 * (1 + options.batchSlowdown * Math.max(0, this.ctx.scheduler.running - 1))) / rate;
  }

  private firstToken(): void {
    this.timer = undefined;
    if (this.response.destroyed) {
      this.cancel();
      return;
    }
    const t = now();
    this.timing.firstTokenAt = t;
    this.prefilled = true;
    const plan = this.plan;
    this.ctx.metrics.recordPrefill({
      promptTokens: this.promptTokens,
      cachedTokens: this.cachedTokens,
      queueMs: this.timing.startedAt - this.timing.arrivedAt,
      prefillMs: t - this.timing.startedAt,
      busySlots: this.ctx.scheduler.running,
    });
    if (plan === undefined || !this.streaming) {
      const remaining = Math.max(this.totalTokens - 1, 0) * this.interval();
      if (remaining > 0) this.timer = setTimeout(() => this.finishBody(), remaining);
      else this.finishBody();
      return;
    }
    if (!this.response.headersSent) this.response.writeHead(200, this.sseHeaders());
    this.dueAt = t;
    this.pump();
  }

  /** Emits every token that is due, then sleeps until the next one (or until the socket drains). */
  private readonly pump = (): void => {
    this.timer = undefined;
    const plan = this.plan;
    if (plan === undefined || this.state !== 'running') return;
    if (this.response.destroyed) {
      this.cancel();
      return;
    }
    const total = plan.completionTokens;
    const dieAt = this.dieMidStream ? Math.max(1, Math.floor(total / 2)) : -1;
    const single = plan.choices.length === 1;
    while (this.emitted < total) {
      const t = now();
      if (this.dueAt > t) {
        this.timer = setTimeout(this.pump, this.dueAt - t);
        return;
      }
      let choice = plan.choices[0];
      let pieceIndex = this.emitted;
      if (!single) {
        this.schedule ??= interleave(plan);
        choice = plan.choices[this.schedule[this.emitted * 2] ?? 0];
        pieceIndex = this.schedule[this.emitted * 2 + 1] ?? 0;
      }
      if (choice === undefined) break;
      this.timing.endedAt = t;
      const text = this.surface !== undefined ? this.surface.tick(plan, choice, pieceIndex, this.timing) : this.ctx.flavor.renderTick(plan, choice, pieceIndex, this.timing);
      this.emitted++;
      this.dueAt += this.interval();
      if (this.emitted === dieAt) {
        this.die(text);
        return;
      }
      if (!this.response.write(text)) {
        this.response.once('drain', this.pump);
        return;
      }
    }
    this.timing.endedAt = now();
    this.complete(this.surface !== undefined ? this.surface.end(plan, this.timing) : this.ctx.flavor.renderEnd(plan, this.timing));
  };

  private finishBody(): void {
    this.timer = undefined;
    if (this.response.destroyed) {
      this.cancel();
      return;
    }
    this.timing.endedAt = now();
    const plan = this.plan;
    let body = '';
    if (plan === undefined) body = 'body' in this.output ? this.output.body() : '';
    else body = this.surface !== undefined ? this.surface.body(plan, this.timing) : this.ctx.flavor.renderBody(plan, this.timing);
    const headers: OutgoingHttpHeaders = {
      ...this.headers,
      'content-type': this.ctx.flavor.jsonType,
      'content-length': Buffer.byteLength(body),
    };
    if (this.dieMidStream) {
      // Promise the whole body, deliver half, then drop the connection.
      this.response.writeHead(200, headers);
      this.die(body.slice(0, Math.floor(body.length / 2)));
      return;
    }
    const format = this.request.headers['endpoint-load-metrics-format'];
    if (typeof format === 'string' && plan !== undefined) {
      const report = this.ctx.flavor.loadReport(format, this.ctx.view);
      if (report !== undefined) headers['endpoint-load-metrics'] = report;
    }
    this.response.writeHead(200, headers);
    this.complete(body);
  }

  private complete(lastWrite: string): void {
    this.state = 'done';
    this.recordFinish(this.engineFinish(), this.totalTokens);
    this.ctx.counters.completed++;
    this.response.end(lastWrite);
    if (this.streaming && this.ctx.flavor.closesAfterStream) {
      const socket = this.response.socket;
      // Like llama-server: drop the connection shortly after a stream unless another request already uses it.
      setTimeout(() => {
        if (socket && !socket.destroyed && (this.ctx.socketBusy?.(socket) ?? 0) === 0) socket.end();
      }, 5).unref();
    }
    this.releaseSlot();
  }

  private engineFinish(): EngineFinish {
    const reason = this.plan?.choices[0]?.finishReason ?? 'stop';
    return reason === 'length' ? 'length' : 'stop';
  }

  /** die-mid-stream: send what we have, then destroy the socket without an orderly end. */
  private die(lastWrite: string): void {
    this.state = 'done';
    this.ctx.counters.failed++;
    this.recordFinish('error', this.generatedSoFar());
    this.releaseSlot();
    this.response.write(lastWrite, () => this.response.destroy());
  }

  cancel(): void {
    if (this.state === 'done') return;
    const wasRunning = this.state === 'running';
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.response.off('drain', this.pump);
    if (this.state === 'queued') this.ctx.scheduler.cancel(this);
    this.state = 'done';
    this.ctx.counters.cancelled++;
    this.ctx.metrics.cancelled++;
    if (wasRunning) {
      this.recordFinish('abort', this.generatedSoFar());
      this.releaseSlot();
    }
  }

  private recordFinish(reason: EngineFinish, generated: number): void {
    const t = now();
    this.ctx.metrics.recordFinish({
      generated,
      reason,
      e2eMs: t - this.timing.arrivedAt,
      decodeMs: this.prefilled ? t - this.timing.firstTokenAt : 0,
      interTokenMs: this.interval(),
      busySlots: this.ctx.scheduler.running,
      // The last sampled token is never decoded into the context.
      contextTokens: this.promptTokens + Math.max(generated - 1, 0),
    });
  }

  private releaseSlot(): void {
    if (this.slotId < 0) return;
    this.ctx.running.delete(this);
    const slotId = this.slotId;
    this.slotId = -1;
    this.ctx.scheduler.release(slotId);
  }

  private sseHeaders(): OutgoingHttpHeaders {
    return { ...this.headers, 'content-type': this.ctx.flavor.sseType };
  }
}
