/**
 * The backend-kind registry and each kind's readers: the config schema lists
 * exactly the registered kinds, and every runtime quirk lives behind the kind.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { backendKind, backendKindNames, type KindGet } from '../../../src/backends/kinds/index.ts';
import { readVllmLoadReport } from '../../../src/backends/kinds/vllm.ts';
import { BackendSchema } from '../../../src/config/schema.ts';
import { ConfigError, validateConfig } from '../../../src/config/load.ts';

function configWithKind(kind: string): unknown {
  return {
    backends: [{ id: 'a', kind, url: 'http://127.0.0.1:8000' }],
    models: [{ name: 'm', targets: [{ backend: 'a', model: 'x' }] }],
  };
}

/** A scripted backend for discovery: path -> [status, body]; records what was asked and with the key or not. */
function scripted(answers: Record<string, [number, unknown]>): { get: KindGet; asked: string[] } {
  const asked: string[] = [];
  const get: KindGet = async (path, withKey) => {
    asked.push(`${path}${withKey ? ' (key)' : ''}`);
    const answer = answers[path];
    if (!answer) return { status: 404, body: '{"detail":"Not Found"}' };
    return { status: answer[0], body: typeof answer[1] === 'string' ? answer[1] : JSON.stringify(answer[1]) };
  };
  return { get, asked };
}

describe('kind registry', () => {
  it('the config schema accepts exactly the registered kinds', () => {
    const listed = (BackendSchema.properties.kind.anyOf as Array<{ const: string }>).map((literal) => literal.const);
    expect(listed).toEqual(backendKindNames);
    for (const name of backendKindNames) {
      expect(validateConfig(configWithKind(name), 'test', {}).backends[0]?.kind).toBe(name);
      expect(backendKind(name).name).toBe(name);
    }
    expect(() => validateConfig(configWithKind('tgi'), 'test', {})).toThrow(ConfigError);
  });

  it('no kind asks for another kind by name: probe, discovery, load report and metrics are per kind', () => {
    for (const name of backendKindNames) {
      const kind = backendKind(name);
      expect(kind.health.path.startsWith('/')).toBe(true);
      if (kind.metrics) expect(kind.metrics.names.length).toBeGreaterThan(0);
    }
    // Only the generic server's health endpoint needs the key.
    expect(backendKindNames.filter((name) => backendKind(name).health.sendsKey)).toEqual(['openai']);
    expect(backendKind('openai').metrics).toBeUndefined();
    expect(backendKind('llamacpp').loadReport).toBeUndefined();
  });
});

describe('vllm kind', () => {
  const kind = backendKind('vllm');

  it('reads the endpoint-load-metrics report in TEXT and JSON forms', () => {
    expect(readVllmLoadReport('TEXT named_metrics.kv_cache_usage_perc=0.25, named_metrics.num_requests_waiting=3.0')).toEqual({ kvCacheUsage: 0.25, queued: 3 });
    expect(readVllmLoadReport('JSON {"named_metrics": {"kv_cache_usage_perc": 0.5, "num_requests_waiting": 7.0}}')).toEqual({ kvCacheUsage: 0.5, queued: 7 });
    expect(readVllmLoadReport('{"kv_cache_utilization": 0.1}')).toEqual({ kvCacheUsage: 0.1 });
    expect(readVllmLoadReport('JSON {not json')).toBeUndefined();
    expect(readVllmLoadReport('TEXT something_else=1')).toBeUndefined();
    expect(readVllmLoadReport('   ')).toBeUndefined();
    expect(kind.loadReport?.requestHeaders).toEqual({ 'endpoint-load-metrics-format': 'TEXT' });
    expect(kind.loadReport?.responseHeader).toBe('endpoint-load-metrics');
  });

  it('health: 200 with an empty body is up, anything else down', () => {
    expect(kind.health.interpret(200, '')).toBe('up');
    expect(kind.health.interpret(503, '')).toBe('down');
  });

  it('discovers max_model_len from /v1/models, with the key', async () => {
    const { get, asked } = scripted({ '/v1/models': [200, { object: 'list', data: [{ id: 'Qwen/Qwen3-8B', max_model_len: 32768 }] }] });
    expect(await kind.discover(get, { wantSlots: true })).toEqual({ models: [{ id: 'Qwen/Qwen3-8B', contextLength: 32768 }] });
    expect(asked).toEqual(['/v1/models (key)']);
  });

  it('reads the current and the pre-V1 KV-cache gauge', () => {
    const read = (entries: Array<[string, number]>) => kind.metrics?.read(new Map(entries));
    expect(
      read([
        ['vllm:num_requests_waiting', 2],
        ['vllm:num_requests_running', 5],
        ['vllm:kv_cache_usage_perc', 0.4],
      ]),
    ).toEqual({ queued: 2, running: 5, kvCacheUsage: 0.4 });
    expect(read([['vllm:gpu_cache_usage_perc', 0.3]])?.kvCacheUsage).toBe(0.3);
  });
});

describe('llamacpp kind', () => {
  const kind = backendKind('llamacpp');

  it('health: 503 Loading model is loading, other 503s are down', () => {
    expect(kind.health.interpret(200, '{"status":"ok"}')).toBe('up');
    expect(kind.health.interpret(503, '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}')).toBe('loading');
    expect(kind.health.interpret(503, '{"error":{"code":503,"message":"no slot"}}')).toBe('down');
  });

  it('discovers n_ctx, and the slot count from /props only when config does not declare it', async () => {
    const answers: Record<string, [number, unknown]> = {
      '/v1/models': [200, { object: 'list', data: [{ id: 'qwen3-8b-q4', meta: { n_ctx: 4096 } }] }],
      '/props': [200, { total_slots: 4 }],
    };
    const wanted = scripted(answers);
    expect(await kind.discover(wanted.get, { wantSlots: true })).toEqual({ models: [{ id: 'qwen3-8b-q4', contextLength: 4096 }], slots: 4 });
    expect(wanted.asked).toEqual(['/v1/models (key)', '/props (key)']);
    const declared = scripted(answers);
    expect(await kind.discover(declared.get, { wantSlots: false })).toEqual({ models: [{ id: 'qwen3-8b-q4', contextLength: 4096 }] });
    expect(declared.asked).toEqual(['/v1/models (key)']);
  });

  it('names the flag a 501 from /metrics asks for', () => {
    expect(kind.metrics?.failureHint?.(501)).toBe('llama-server needs --metrics, or /slots not disabled');
    expect(kind.metrics?.failureHint?.(500)).toBeUndefined();
  });

  it('without --metrics (a recorded 501) reads the running requests from the recorded /slots', () => {
    const recorded = (name: string) => JSON.parse(readFileSync(new URL(`../../fixtures/llamacpp/${name}.json`, import.meta.url), 'utf8')) as { status: number; body: unknown };
    const fallback = kind.metrics?.fallback;
    expect(fallback?.path).toBe('/slots');
    expect(fallback?.when(recorded('metrics-disabled').status)).toBe(true);
    expect(fallback?.when(500)).toBe(false);
    expect(fallback?.read(JSON.stringify(recorded('slots-busy').body))).toEqual({ queued: undefined, running: 4, kvCacheUsage: undefined });
    expect(fallback?.read(JSON.stringify(recorded('slots-idle').body))).toEqual({ queued: undefined, running: 0, kvCacheUsage: undefined });
    expect(fallback?.read('{"error":{}}')).toBeUndefined();
  });
});

describe('sglang kind', () => {
  const kind = backendKind('sglang');

  it('health: 200 up; 503 (warming up or shutting down, empty body) loading; the probe goes without the key', () => {
    expect(kind.health).toMatchObject({ path: '/health', sendsKey: false });
    expect(kind.health.interpret(200, '')).toBe('up');
    expect(kind.health.interpret(503, '')).toBe('loading');
    expect(kind.health.interpret(500, '')).toBe('down');
  });

  it('KV-cache use is used tokens over the pool, summed across ranks; token_usage only without the pool gauge', () => {
    const read = (entries: Array<[string, number]>) => kind.metrics?.read(new Map(entries));
    expect(
      read([
        ['sglang:num_running_reqs', 3],
        ['sglang:num_queue_reqs', 4],
        ['sglang:num_used_tokens', 300],
        ['sglang:max_total_num_tokens', 1200],
        ['sglang:token_usage', 0.9],
      ]),
    ).toEqual({
      running: 3,
      queued: 4,
      kvCacheUsage: 0.25,
    });
    expect(read([['sglang:token_usage', 0.4]])?.kvCacheUsage).toBe(0.4);
    expect(read([])).toEqual({ running: undefined, queued: undefined, kvCacheUsage: undefined });
    expect(kind.metrics?.failureHint?.(404)).toBe('sglang needs --enable-metrics');
  });

  it('discovers max_model_len from /v1/models with the key; no load report', async () => {
    const { get, asked } = scripted({
      '/v1/models': [
        200,
        { object: 'list', data: [{ id: 'Qwen/Qwen2.5-7B-Instruct', object: 'model', owned_by: 'sglang', root: 'Qwen/Qwen2.5-7B-Instruct', parent: null, max_model_len: 32768 }] },
      ],
    });
    expect(await kind.discover(get, { wantSlots: true })).toEqual({ models: [{ id: 'Qwen/Qwen2.5-7B-Instruct', contextLength: 32768 }] });
    expect(asked).toEqual(['/v1/models (key)']);
    expect(kind.loadReport).toBeUndefined();
  });
});

describe('openai kind', () => {
  it('reads context_length or max_model_len; a failed list is "unknown", not "none"', async () => {
    const kind = backendKind('openai');
    const listed = scripted({ '/v1/models': [200, { data: [{ id: 'a', context_length: 128000 }, { id: 'b', max_model_len: 8192 }, { id: 'c' }] }] });
    expect((await kind.discover(listed.get, { wantSlots: true })).models).toEqual([
      { id: 'a', contextLength: 128000 },
      { id: 'b', contextLength: 8192 },
      { id: 'c', contextLength: undefined },
    ]);
    expect((await kind.discover(scripted({ '/v1/models': [401, { error: 'Unauthorized' }] }).get, { wantSlots: true })).models).toBeUndefined();
  });
});
