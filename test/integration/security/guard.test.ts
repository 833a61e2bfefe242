/**
 * The PII and secret guard (issue 12 item 3), on a real gateway and simulators that record what reached them:
 * redacted values never leave the gateway on any surface (chat through the openai SDK, Anthropic Messages,
 * Responses, tool arguments), the same value gets the same placeholder; a blocked category is refused with 400
 * naming the category, never the value, and nothing is sent; a confined category goes only to a sensitive zone
 * although a cheaper backend elsewhere is allowed; a tenant's own policy overrides the global one; no value
 * reaches a log line; findings are counted by category and action.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { post, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';

const strict = generateApiKey();
const lax = generateApiKey();
const keyed = generateApiKey(); // tenant lax, with a policy of its own
const adminToken = 'admin-token-for-guard-test';
const model = 'Qwen/Qwen3-8B';
const email = 'jane.doe@example.com';
const awsKey = 'AKIAIOSFODNN7EXAMPLE';
let onprem: Simulator;
let external: Simulator;
let gateway: TestGateway;

beforeAll(async () => {
  [onprem, external] = await Promise.all([startSim({ flavor: 'vllm' }), startSim({ flavor: 'vllm' })]);
  gateway = await startTestGateway({
    backends: [
      { id: 'onprem', kind: 'vllm', url: onprem.url, zone: 'onprem', cost: { inputPer1M: 5, outputPer1M: 5 } },
      { id: 'external', kind: 'openai', url: `${external.url}/v1`, zone: 'external', cost: { inputPer1M: 0.1, outputPer1M: 0.1 } },
    ],
    // The external zone's own floor: phone numbers never go there (confined), whatever the tenant says.
    zones: { onprem: { sensitive: true }, external: { guard: { phone: 'confine' } } },
    models: [
      {
        name: 'm',
        policy: 'cheapest',
        targets: [
          { backend: 'onprem', model },
          { backend: 'external', model },
        ],
      },
    ],
    guard: {
      enabled: true,
      actions: { email: 'redact', api_key: 'redact', card: 'block', iban: 'block', ip: 'confine', employee_id: 'redact' },
      patterns: [{ name: 'employee_id', pattern: 'EMP-\\d{6}' }],
    },
    auth: {
      mode: 'keys',
      keys: [
        { id: 'strict', hash: strict.hash, tenant: 'strict' },
        { id: 'lax', hash: lax.hash, tenant: 'lax' },
        { id: 'keyed', hash: keyed.hash, tenant: 'lax', guard: { email: 'block', phone: 'redact' } },
      ],
    },
    tenants: { lax: { guard: { email: 'allow', card: 'allow' } } },
    admin: { token: adminToken },
  });
});
afterAll(async () => {
  await gateway?.close();
  await Promise.all([onprem?.close(), external?.close()]);
});

const sent = (simulator: Simulator) => JSON.stringify(simulator.stats().lastRequest?.body ?? null);
const requests = () => onprem.stats().requests + external.stats().requests;

describe('guard', () => {
  it('redacts before anything leaves, with the same placeholder for the same value (chat, SDK)', async () => {
    const client = new OpenAI({ apiKey: strict.secret, baseURL: gateway.baseURL, maxRetries: 0 });
    const answer = await client.chat.completions
      .create({
        model: 'm',
        messages: [
          { role: 'system', content: `Escalate to ${email}.` },
          { role: 'user', content: `Mail ${email} and other.person@example.org my key ${awsKey}, id EMP-123456` },
        ],
        max_tokens: 4,
      })
      .withResponse();
    const backend = answer.response.headers.get('x-switchyard-backend') as 'onprem' | 'external';
    const body = sent(backend === 'onprem' ? onprem : external);
    expect(body).not.toContain(email);
    expect(body).not.toContain('other.person@example.org');
    expect(body).not.toContain(awsKey);
    expect(body).not.toContain('EMP-123456');
    expect(body).toContain('Escalate to [EMAIL_1].');
    expect(body).toContain('Mail [EMAIL_1] and [EMAIL_2] my key [API_KEY_1], id [EMPLOYEE_ID_1]');
  });

  it('redacts on the Anthropic Messages and Responses surfaces and in tool arguments', async () => {
    const messages = await post(
      `${gateway.url}/v1/messages`,
      JSON.stringify({ model: 'm', max_tokens: 4, messages: [{ role: 'user', content: [{ type: 'text', text: `contact ${email}` }] }] }),
      { 'content-type': 'application/json', 'x-api-key': strict.secret, 'anthropic-version': '2023-06-01' },
    );
    expect(messages.status).toBe(200);
    expect(sent(onprem) + sent(external)).not.toContain(email);
    const client = new OpenAI({ apiKey: strict.secret, baseURL: gateway.baseURL, maxRetries: 0 });
    await client.responses.create({ model: 'm', input: `forward to ${email}`, max_output_tokens: 4 });
    await client.chat.completions.create({
      model: 'm',
      max_tokens: 4,
      messages: [
        { role: 'user', content: 'send it' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'send', arguments: JSON.stringify({ to: email }) } }] },
        { role: 'tool', tool_call_id: 'c1', content: `sent to ${email}` },
      ],
    });
    expect(sent(onprem) + sent(external)).not.toContain(email);
  });

  it('blocks a blocked category with 400 naming it, never the value, and sends nothing', async () => {
    const before = requests();
    const answer = await post(
      `${gateway.url}/v1/chat/completions`,
      JSON.stringify({ model: 'm', max_tokens: 4, messages: [{ role: 'user', content: 'charge 4111 1111 1111 1111 and GB82 WEST 1234 5698 7654 32' }] }),
      { 'content-type': 'application/json', authorization: `Bearer ${strict.secret}` },
    );
    expect(answer.status).toBe(400);
    expect(answer.json.error).toMatchObject({ type: 'invalid_request_error', code: 'sensitive_data_blocked' });
    expect(answer.json.error.message).toContain('card, iban');
    expect(answer.text).not.toContain('4111');
    expect(answer.text).not.toContain('WEST');
    expect(requests()).toBe(before);
  });

  it('confines a request with a confined category to the sensitive zone, where others go to the cheaper backend', async () => {
    const chat = (content: string, key = strict) =>
      post(`${gateway.url}/v1/chat/completions`, JSON.stringify({ model: 'm', max_tokens: 4, messages: [{ role: 'user', content }] }), {
        'content-type': 'application/json',
        authorization: `Bearer ${key.secret}`,
      });
    expect((await chat('what is the capital of France?')).headers.get('x-switchyard-backend')).toBe('external');
    const externalBefore = external.stats().requests;
    for (let index = 0; index < 3; index++) expect((await chat(`server 10.1.2.${index} is down`)).headers.get('x-switchyard-backend')).toBe('onprem');
    expect(external.stats().requests).toBe(externalBefore);
  });

  it("applies a zone's policy to requests that may reach it: a phone number is kept out of the external zone", async () => {
    const externalBefore = external.stats().requests;
    const answer = await post(
      `${gateway.url}/v1/chat/completions`,
      JSON.stringify({ model: 'm', max_tokens: 4, messages: [{ role: 'user', content: 'call me on +1 415 555 0132' }] }),
      { 'content-type': 'application/json', authorization: `Bearer ${strict.secret}` },
    );
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-switchyard-backend')).toBe('onprem');
    expect(external.stats().requests).toBe(externalBefore);
    expect(sent(onprem)).toContain('+1 415 555 0132'); // confined, not redacted: on-prem may see it
  });

  it("applies the tenant's own policy over the global one", async () => {
    const answer = await post(
      `${gateway.url}/v1/chat/completions`,
      JSON.stringify({ model: 'm', max_tokens: 4, messages: [{ role: 'user', content: `mail ${email}, card 4111111111111111` }] }),
      { 'content-type': 'application/json', authorization: `Bearer ${lax.secret}` },
    );
    expect(answer.status).toBe(200);
    expect(sent(answer.headers.get('x-switchyard-backend') === 'onprem' ? onprem : external)).toContain(email);
  });

  it("applies a key's own policy over its tenant's, with categories nobody else scans for", async () => {
    const ask = (content: string) =>
      post(`${gateway.url}/v1/chat/completions`, JSON.stringify({ model: 'm', max_tokens: 4, messages: [{ role: 'user', content }] }), {
        'content-type': 'application/json',
        authorization: `Bearer ${keyed.secret}`,
      });
    expect((await ask(`mail ${email}`)).json.error.code).toBe('sensitive_data_blocked'); // its tenant allows e-mail
    const phone = await ask('call +44 20 7946 0958 please');
    expect(phone.status).toBe(200);
    expect(sent(phone.headers.get('x-switchyard-backend') === 'onprem' ? onprem : external)).toContain('call [PHONE_1] please');
  });

  it('logs verdicts, never values, and counts findings by category and action', async () => {
    const logs = gateway.logs.join('\n');
    expect(logs).not.toContain(email);
    expect(logs).not.toContain(awsKey);
    expect(logs).toContain('"email:redact"');
    const metrics = await (await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } })).text();
    expect(metrics).toMatch(/switchyard_guard_findings_total\{category="email",action="redact"\} [1-9]/);
    expect(metrics).toMatch(/switchyard_guard_findings_total\{category="card",action="block"\} 1/);
    expect(metrics).toMatch(/switchyard_guard_findings_total\{category="ip",action="confine"\} 3/);
  });
});

/** A gateway with the guard in front of a scripted OpenAI-compatible backend whose answers the test writes. */
async function scriptedGateway(answer: (body: string) => { json: string } | { sse: string }, guard: Record<string, unknown>, kind = 'openai') {
  const { startScriptedBackend } = await import('../../helpers/scripted-backend.ts');
  const backend = await startScriptedBackend((_request, response, body) => {
    const reply = answer(body);
    response.writeHead(200, { 'content-type': 'json' in reply ? 'application/json' : 'text/event-stream' });
    response.end('json' in reply ? reply.json : reply.sse);
  });
  const gateway = await startTestGateway({
    backends: [{ id: 'scripted', kind, url: kind === 'openai' ? `${backend.url}/v1` : backend.url, health: { intervalMs: 60_000 }, scrape: { intervalMs: 0 } }],
    models: [{ name: 'm', targets: [{ backend: 'scripted', model: 'x' }] }],
    guard: { enabled: true, ...guard },
  });
  return {
    backend,
    gateway,
    close: async () => {
      await gateway.close();
      await backend.close();
    },
  };
}

/** A chat completion whose message says `content`. */
function chatAnswer(content: string): { json: string } {
  return {
    json: JSON.stringify({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'x',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
    }),
  };
}

/** A chat stream that writes `Hi [EMAIL_1], and [EMAIL_9]!` with the first placeholder in pieces. */
function piecesStream(): { sse: string } {
  const pieces = ['Hi ', '[EMA', 'IL_', '1]', ', and [EMAIL_9]', '!'];
  const chunk = (delta: Record<string, unknown>, finish: string | null, usage?: Record<string, number>) =>
    `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'x', choices: finish === 'usage' ? [] : [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) })}\n\n`;
  return {
    sse: [
      chunk({ role: 'assistant', content: '' }, null),
      ...pieces.map((piece) => chunk({ content: piece }, null)),
      chunk({}, 'stop'),
      chunk({}, 'usage', { prompt_tokens: 3, completion_tokens: 6, total_tokens: 9 }),
      'data: [DONE]\n\n',
    ].join(''),
  };
}

describe('guard.restore', () => {
  it('puts redacted values back where the model repeats their placeholders, on non-streaming answers of every surface', async () => {
    // A model that repeats what it was sent, plus a placeholder of its own invention.
    const echo = await scriptedGateway((body) => chatAnswer(`You said ${JSON.stringify((JSON.parse(body) as { messages: unknown[] }).messages)}; also [EMAIL_9]`), {
      restore: true,
      actions: { email: 'redact' },
    });
    try {
      const answer = await echo.gateway.client().chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `mail "Jane" <${email}>` }] });
      expect(echo.backend.requests.at(-1)?.body).not.toContain(email);
      expect(answer.choices[0]?.message.content).toContain(`mail \\"Jane\\" <${email}>`); // the value is back, the JSON intact
      expect(answer.choices[0]?.message.content).toContain('[EMAIL_9]'); // invented: left as is
      const messages = await post(`${echo.gateway.url}/v1/messages`, JSON.stringify({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: `reply to ${email}` }] }), {
        'content-type': 'application/json',
        'anthropic-version': '2023-06-01',
      });
      expect(messages.status).toBe(200);
      expect(messages.text).toContain(email);
      expect(echo.backend.requests.at(-1)?.body).not.toContain(email);
    } finally {
      await echo.close();
    }
  });

  it('puts the value back into chat deltas even when the placeholder arrives in pieces, and bypasses the cache', async () => {
    const streaming = await scriptedGateway(piecesStream, { restore: true, actions: { email: 'redact' } });
    try {
      const ask = async () => {
        const stream = await streaming.gateway
          .client()
          .chat.completions.create({ model: 'm', temperature: 0, stream: true, messages: [{ role: 'user', content: `greet ${email}` }] })
          .withResponse();
        let text = '';
        for await (const part of stream.data) text += part.choices[0]?.delta.content ?? '';
        return { text, cache: stream.response.headers.get('x-switchyard-cache') };
      };
      const first = await ask();
      expect(first.text).toBe(`Hi ${email}, and [EMAIL_9]!`);
      expect(streaming.backend.requests.at(-1)?.body).not.toContain(email);
      const second = await ask();
      expect(second.text).toBe(`Hi ${email}, and [EMAIL_9]!`);
      expect(second.cache).toBe('BYPASS'); // a restored stream is neither served from nor stored in the cache
      expect(streaming.backend.requests).toHaveLength(2);
    } finally {
      await streaming.close();
    }
  });

  it('puts values back into streamed Responses and Messages answers too, through the chat translation on a runtime that serves them natively', async () => {
    // A vLLM-kind backend serves /v1/responses and /v1/messages natively; a restored stream goes through chat instead.
    const streaming = await scriptedGateway(piecesStream, { restore: true, actions: { email: 'redact' } }, 'vllm');
    try {
      const responses = await streaming.gateway.client().responses.create({ model: 'm', input: `greet ${email}`, stream: true });
      let text = '';
      let completed = '';
      for await (const event of responses) {
        if (event.type === 'response.output_text.delta') text += event.delta;
        if (event.type === 'response.completed') {
          const item = event.response.output.find((output) => output.type === 'message');
          const part = item?.type === 'message' ? item.content[0] : undefined;
          completed = part?.type === 'output_text' ? part.text : '';
        }
      }
      expect(text).toBe(`Hi ${email}, and [EMAIL_9]!`);
      expect(completed).toBe(`Hi ${email}, and [EMAIL_9]!`);
      expect(streaming.backend.requests.at(-1)?.path).toBe('/v1/chat/completions');
      expect(streaming.backend.requests.at(-1)?.body).not.toContain(email);

      const { default: Anthropic } = await import('@anthropic-ai/sdk');
      const anthropic = new Anthropic({ baseURL: streaming.gateway.url, apiKey: 'test-key', maxRetries: 0 });
      const message = anthropic.messages.stream({ model: 'm', max_tokens: 16, messages: [{ role: 'user', content: `greet ${email}` }] });
      let streamed = '';
      message.on('text', (delta) => {
        streamed += delta;
      });
      const final = await message.finalMessage();
      expect(streamed).toBe(`Hi ${email}, and [EMAIL_9]!`);
      expect(final.content[0]?.type === 'text' ? final.content[0].text : '').toBe(`Hi ${email}, and [EMAIL_9]!`);
      expect(streaming.backend.requests.at(-1)?.path).toBe('/v1/chat/completions');
      expect(streaming.backend.requests.at(-1)?.body).not.toContain(email);
    } finally {
      await streaming.close();
    }
  });
});

describe('guard.output', () => {
  it('replaces secrets in a non-streaming answer before the client sees them, and counts them', async () => {
    const leaked = 'sk-proj-Zx8q2LmP0vN7rT4wK9sB3yH6dF1gJ5cA';
    const leaky = await scriptedGateway(() => chatAnswer(`Use the key ${leaked} with AKIAIOSFODNN7EXAMPLE.`), { output: 'redact' });
    try {
      const answer = await leaky.gateway.client().chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'what key?' }] });
      expect(answer.choices[0]?.message.content).toBe('Use the key [API_KEY_REDACTED] with [API_KEY_REDACTED].');
      expect(leaky.gateway.logs.join('\n')).not.toContain(leaked);
      expect(leaky.gateway.logs.join('\n')).toContain('api_key:output_redact');
      const metrics = await (await fetch(`${leaky.gateway.url}/metrics`)).text();
      expect(metrics).toMatch(/switchyard_guard_findings_total\{category="api_key",action="output_redact"\} 1/);
    } finally {
      await leaky.close();
    }
  });
});

/** The pieces of an answer that repeats a redacted address and leaks a key, both split across deltas. */
const leakyPieces = [
  'Use ',
  'sk-proj-Zx8q',
  '2LmP0vN7rT4w',
  'K9sB3yH6dF1gJ5cA',
  ' for ',
  '[EMA',
  'IL_',
  '1]',
  ', not -----BEGIN PRIVATE',
  ' KEY-----\nMIIEvQIBADANBg',
  'kqhkiG9w0\n-----END PRIVATE KEY-----',
  '!',
];
const leakyText = (value: string) => `Use [API_KEY_REDACTED] for ${value}, not [PRIVATE_KEY_REDACTED]!`;

/** The same answer as a native Responses stream (vLLM's event sequence). */
function responsesPieces(): string {
  let sequence = 0;
  const event = (type: string, body: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...body })}\n\n`;
  const full = leakyPieces.join('');
  const item = (text: string, status: string) => ({
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    status,
    content: text === '' ? [] : [{ type: 'output_text', text, annotations: [] }],
  });
  const response = (status: string, output: unknown[]) => ({
    id: 'resp_1',
    object: 'response',
    created_at: 1,
    status,
    model: 'x',
    output,
    usage: { input_tokens: 3, output_tokens: 12, total_tokens: 15 },
  });
  return [
    event('response.created', { response: response('in_progress', []) }),
    event('response.output_item.added', { output_index: 0, item: item('', 'in_progress') }),
    event('response.content_part.added', { item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }),
    ...leakyPieces.map((delta) => event('response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta })),
    event('response.output_text.done', { item_id: 'msg_1', output_index: 0, content_index: 0, text: full }),
    event('response.content_part.done', { item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: full, annotations: [] } }),
    event('response.output_item.done', { output_index: 0, item: item(full, 'completed') }),
    event('response.completed', { response: response('completed', [item(full, 'completed')]) }),
  ].join('');
}

/** The same answer as a native Anthropic Messages stream. */
function messagesPieces(): string {
  const event = (type: string, body: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...body })}\n\n`;
  return [
    event('message_start', {
      message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'x', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 3, output_tokens: 0 } },
    }),
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ...leakyPieces.map((text) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text } })),
    event('content_block_stop', { index: 0 }),
    event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 12 } }),
    event('message_stop', {}),
  ].join('');
}

describe('the guard on streamed answers', () => {
  it('replaces secrets split across chat deltas (guard.output), and the stream stays cacheable', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'x', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const sse = [chunk({ role: 'assistant', content: '' }, null), ...leakyPieces.map((content) => chunk({ content }, null)), chunk({}, 'stop'), 'data: [DONE]\n\n'].join('');
    const leaky = await scriptedGateway(() => ({ sse }), { output: 'redact' });
    try {
      const ask = async () => {
        const stream = await leaky.gateway
          .client()
          .chat.completions.create({ model: 'm', temperature: 0, stream: true, messages: [{ role: 'user', content: 'what key?' }] })
          .withResponse();
        let text = '';
        for await (const part of stream.data) text += part.choices[0]?.delta.content ?? '';
        return { text, cache: stream.response.headers.get('x-switchyard-cache') };
      };
      const first = await ask();
      expect(first.text).toBe(leakyText('[EMAIL_1]'));
      // the cache keeps the stream as the client got it: a replay has no secret either
      const second = await ask();
      expect(second.cache).toBe('HIT');
      expect(second.text).toBe(leakyText('[EMAIL_1]'));
      expect(leaky.gateway.logs.join('\n')).not.toContain('Zx8q2LmP');
      expect(leaky.gateway.logs.join('\n')).toContain('api_key:output_redact');
      const metrics = await (await fetch(`${leaky.gateway.url}/metrics`)).text();
      expect(metrics).toMatch(/switchyard_guard_findings_total\{category="api_key",action="output_redact"\} 1/);
      expect(metrics).toMatch(/switchyard_guard_findings_total\{category="private_key",action="output_redact"\} 1/);
    } finally {
      await leaky.close();
    }
  });

  it('restores values and replaces secrets in native Responses and Messages streams of a backend pinned to native', async () => {
    const { startScriptedBackend } = await import('../../helpers/scripted-backend.ts');
    const backend = await startScriptedBackend((request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end(request.url?.startsWith('/v1/responses') ? responsesPieces() : messagesPieces());
    });
    const gateway = await startTestGateway({
      backends: [
        { id: 'native', kind: 'vllm', url: backend.url, surfaces: { responses: 'native', messages: 'native' }, health: { intervalMs: 60_000 }, scrape: { intervalMs: 0 } },
      ],
      models: [{ name: 'm', targets: [{ backend: 'native', model: 'x' }] }],
      guard: { enabled: true, restore: true, output: 'redact', actions: { email: 'redact' } },
    });
    try {
      const responses = await gateway.client().responses.create({ model: 'm', input: `greet ${email}`, stream: true });
      let text = '';
      let done = '';
      let completed = '';
      const sequence: number[] = [];
      for await (const event of responses) {
        sequence.push(event.sequence_number);
        if (event.type === 'response.output_text.delta') text += event.delta;
        if (event.type === 'response.output_text.done') done = event.text;
        if (event.type === 'response.completed') {
          const item = event.response.output.find((output) => output.type === 'message');
          const part = item?.type === 'message' ? item.content[0] : undefined;
          completed = part?.type === 'output_text' ? part.text : '';
        }
      }
      expect(backend.requests.at(-1)?.path).toBe('/v1/responses');
      expect(backend.requests.at(-1)?.body).not.toContain(email);
      expect(text).toBe(leakyText(email));
      expect(done).toBe(text);
      expect(completed).toBe(text);
      expect(sequence).toEqual(sequence.map((_, index) => index)); // one more delta, numbers still in order
      const { default: Anthropic } = await import('@anthropic-ai/sdk');
      const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: 'test-key', maxRetries: 0 });
      const message = anthropic.messages.stream({ model: 'm', max_tokens: 16, messages: [{ role: 'user', content: `greet ${email}` }] });
      let streamed = '';
      message.on('text', (delta) => {
        streamed += delta;
      });
      const final = await message.finalMessage();
      expect(backend.requests.at(-1)?.path).toBe('/v1/messages');
      expect(backend.requests.at(-1)?.body).not.toContain(email);
      expect(streamed).toBe(leakyText(email));
      expect(final.content[0]?.type === 'text' ? final.content[0].text : '').toBe(leakyText(email));
    } finally {
      await gateway.close();
      await backend.close();
    }
  });
});
