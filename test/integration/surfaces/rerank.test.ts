/**
 * /v1/rerank, the proof that a new surface is one folder plus its line in
 * surfaces/index.ts: passed through to the runtimes that serve it (llama.cpp
 * and vLLM simulators, each answering in its runtime's shape), refused for
 * backends that do not, cached like embeddings, counted in the metrics under
 * its own endpoint label.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, post, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';

let vllm: Simulator;
let llama: Simulator;
let plain: Simulator;
let gateway: TestGateway;

const documents = ['A river is flowing water that runs to the sea.', 'Paris is a city in France.', 'Bananas are yellow fruit.'];

beforeAll(async () => {
  vllm = await startSim({ flavor: 'vllm', model: 'BAAI/bge-reranker-v2-m3' });
  llama = await startSim({ flavor: 'llamacpp', model: 'bge-reranker' });
  plain = await startSim({ flavor: 'vllm', model: 'generic' });
  gateway = await startTestGateway({
    backends: [
      backendFor('vllm', vllm),
      backendFor('llama', llama),
      // A generic OpenAI-compatible server: no rerank unless the operator says it has one.
      { id: 'generic', kind: 'openai', url: plain.url },
      { id: 'generic-rerank', kind: 'openai', url: plain.url, surfaces: { rerank: 'native' } },
    ],
    models: [
      { name: 'rerank-vllm', targets: [{ backend: 'vllm', model: 'BAAI/bge-reranker-v2-m3' }] },
      { name: 'rerank-llama', aliases: ['reranker'], targets: [{ backend: 'llama', model: 'bge-reranker' }] },
      { name: 'rerank-generic', targets: [{ backend: 'generic', model: 'generic' }] },
      { name: 'rerank-generic-enabled', targets: [{ backend: 'generic-rerank', model: 'generic' }] },
    ],
  });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([vllm, llama, plain].map((simulator) => simulator?.close()));
});

interface RerankAnswer {
  model: string;
  results: Array<{ index: number; relevance_score: number; document?: { text: string } }>;
  usage: { prompt_tokens?: number; total_tokens: number };
}

function rerank(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return post(`${gateway.url}/v1/rerank`, JSON.stringify(body), { 'content-type': 'application/json', ...headers });
}

async function metricsText(): Promise<string> {
  return (await fetch(`${gateway.url}/metrics`)).text();
}

describe.each(['rerank-vllm', 'reranker'])('POST /v1/rerank via %s', (model) => {
  it('passes the request through and answers in the runtime shape under the public model name', async () => {
    const answer = await rerank({ model, query: 'What is a river?', documents, top_n: 2 });
    expect(answer.status).toBe(200);
    const body = answer.json as unknown as RerankAnswer;
    expect(body.model).toBe(model);
    expect(body.results).toHaveLength(2);
    expect(body.results[0]?.index).toBe(0); // the river document ranks first
    expect(body.usage.total_tokens).toBeGreaterThan(0);
    expect(answer.headers.get('x-switchyard-translated')).toBeNull();
    expect(answer.headers.get('x-switchyard-backend')).toBe(model === 'reranker' ? 'llama' : 'vllm');
  });
});

describe('rerank surface', () => {
  it('counts requests and prompt tokens under endpoint="rerank"', async () => {
    const before = await metricsText();
    const answer = await rerank({ model: 'rerank-llama', query: 'yellow fruit', documents });
    expect(answer.status).toBe(200);
    const usage = (answer.json as unknown as RerankAnswer).usage;
    const after = await metricsText();
    const requests = (text: string) =>
      Number(/switchyard_requests_total\{model="rerank-llama",backend="llama",endpoint="rerank",status_class="2xx",cache="[a-z]+"\} (\d+)/.exec(text)?.[1] ?? 0);
    const promptTokens = (text: string) => Number(/switchyard_tokens_total\{model="rerank-llama",backend="llama",type="prompt"\} (\d+)/.exec(text)?.[1] ?? 0);
    expect(requests(after) - requests(before)).toBe(1);
    expect(promptTokens(after) - promptTokens(before)).toBe(usage.prompt_tokens ?? usage.total_tokens);
  });

  it('serves an identical rerank from the cache (scores are not sampled)', async () => {
    const body = { model: 'rerank-vllm', query: 'Which city is in France?', documents };
    const first = await rerank(body);
    const second = await rerank(body);
    expect(first.headers.get('x-switchyard-cache')).toBe('MISS');
    expect(second.headers.get('x-switchyard-cache')).toBe('HIT');
    expect(second.json).toEqual(first.json);
  });

  it('refuses a model whose backends do not serve rerank, naming the option', async () => {
    const answer = await rerank({ model: 'rerank-generic', query: 'q', documents });
    expect(answer.status).toBe(400);
    expect(answer.json.error.code).toBe('unsupported_endpoint');
    expect(answer.json.error.message).toContain('backends[].surfaces');
  });

  it('passes through to a generic backend once the operator enables rerank on it', async () => {
    const answer = await rerank({ model: 'rerank-generic-enabled', query: 'What is a river?', documents });
    expect(answer.status).toBe(200);
    expect((answer.json as unknown as RerankAnswer).model).toBe('rerank-generic-enabled');
  });

  it.each([
    [{ model: 'rerank-vllm', documents }, 'query'],
    [{ model: 'rerank-vllm', query: 'q' }, 'documents'],
    [{ model: 'rerank-vllm', query: 'q', documents: [] }, 'documents'],
    [{ query: 'q', documents }, 'model'],
  ])('refuses %j with a 400 naming %s', async (body, param) => {
    const answer = await rerank(body);
    expect(answer.status).toBe(400);
    expect(answer.json.error.param).toBe(param);
    expect(answer.json.error.type).toBe('invalid_request_error');
  });
});
