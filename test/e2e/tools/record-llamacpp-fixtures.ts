// Record real llama-server responses into test/fixtures/llamacpp/, so the
// simulator can be checked against the real thing.
//
//   npm run e2e:setup && node bin/node24.js test/e2e/tools/record-llamacpp-fixtures.ts [--only base|surfaces]
//
// `--only surfaces` re-records just the Responses / Messages / rerank / chat-option
// fixtures (recordSurfaces below), leaving the others as they are.
//
// Each fixture NAME.json holds { request, status, headers, body | bodyText };
// streamed bodies are also written raw as NAME.sse.txt, /metrics as metrics*.txt.

import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { type LlamaBuild, resolveLlamaBuild, startLlamaServer, type LlamaServer } from '../helpers/llama-server.ts';
import { call, OUT, type Recorded, save, setCachePrefix, write } from './fixture-recording.ts';
import { recordSurfaces } from './record-llamacpp-surfaces.ts';

const chatMessages = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Say hello in five words.' },
];
const longPrompt = 'hello '.repeat(3000);

/** Open a stream and resolve once its first bytes arrived; returns an abort function and the done promise. */
async function openStream(base: string, maxTokens: number): Promise<{ abort(): void; done: Promise<void>; firstByteMs: number }> {
  const ac = new AbortController();
  const t0 = Date.now();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'x', messages: chatMessages, max_tokens: maxTokens, stream: true }),
    signal: ac.signal,
  });
  const reader = res.body!.getReader();
  await reader.read();
  const firstByteMs = Date.now() - t0;
  const done = (async () => {
    try {
      for (;;) {
        const { done: d } = await reader.read();
        if (d) return;
      }
    } catch {
      // aborted
    }
  })();
  return { abort: () => ac.abort(), done, firstByteMs };
}

/** The fixtures of the OpenAI chat / completions / native endpoints (the first recording). */
async function recordBase(build: LlamaBuild): Promise<void> {
  // ------------------------------------------------------------ startup probe
  // Poll /health from the moment of spawn to catch the "loading" answer.
  {
    const { spawn } = await import('node:child_process');
    const { freePort } = await import('../helpers/llama-server.ts');
    const port = await freePort();
    const child = spawn(build.serverBin, ['-m', build.modelPath, '--host', '127.0.0.1', '--port', String(port), '-np', '1', '-c', '512', '-t', '1'], { stdio: 'ignore' });
    const seen = new Map<string, Recorded>();
    const t0 = Date.now();
    while (Date.now() - t0 < 30_000) {
      try {
        const rec = await call(`http://127.0.0.1:${port}`, { method: 'GET', path: '/health' });
        const key = `${rec.status}`;
        if (!seen.has(key)) seen.set(key, rec);
        if (rec.status === 200) break;
      } catch {
        if (!seen.has('refused')) seen.set('refused', { request: { method: 'GET', path: '/health' }, status: 0, headers: {}, bodyText: 'connection refused' });
      }
      await sleep(2);
    }
    // this one was started without --metrics
    save('metrics-disabled', await call(`http://127.0.0.1:${port}`, { method: 'GET', path: '/metrics' }));
    child.kill('SIGKILL');
    const loading = [...seen.entries()].find(([k]) => k === '503');
    if (loading !== undefined) save('health-loading', loading[1]);
    console.log(`  startup /health sequence: ${[...seen.keys()].join(' -> ')}`);
  }

  const srv: LlamaServer = await startLlamaServer({ slots: 4, ctx: 2048, alias: 'tiny-llama' });
  try {
    const base = srv.url;
    write('command.txt', `${srv.args.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}\n`);

    save('health', await call(base, { method: 'GET', path: '/health' }));
    save('models', await call(base, { method: 'GET', path: '/v1/models' }));
    save('props', await call(base, { method: 'GET', path: '/props' }));
    save('slots-idle', await call(base, { method: 'GET', path: '/slots' }));

    save(
      'chat-completion',
      await call(base, {
        method: 'POST',
        path: '/v1/chat/completions',
        json: { model: 'gpt-4o-mini', messages: chatMessages, max_tokens: 8 },
      }),
    );
    save(
      'chat-completion-stream',
      await call(base, {
        method: 'POST',
        path: '/v1/chat/completions',
        json: { model: 'gpt-4o-mini', messages: chatMessages, max_tokens: 4, stream: true },
      }),
    );
    save(
      'chat-completion-stream-usage',
      await call(base, {
        method: 'POST',
        path: '/v1/chat/completions',
        json: {
          model: 'gpt-4o-mini',
          messages: chatMessages,
          max_tokens: 4,
          stream: true,
          stream_options: { include_usage: true },
        },
      }),
    );
    save(
      'completion',
      await call(base, {
        method: 'POST',
        path: '/v1/completions',
        json: { model: 'gpt-3.5-turbo-instruct', prompt: 'Once upon a time', max_tokens: 8 },
      }),
    );
    save(
      'completion-stream',
      await call(base, {
        method: 'POST',
        path: '/v1/completions',
        json: { model: 'gpt-3.5-turbo-instruct', prompt: 'Once upon a time', max_tokens: 4, stream: true },
      }),
    );
    save(
      'error-context-exceeded',
      await call(base, {
        method: 'POST',
        path: '/v1/chat/completions',
        json: { model: 'x', messages: [{ role: 'user', content: longPrompt }], max_tokens: 4 },
      }),
    );
    save(
      'error-context-exceeded-stream',
      await call(base, {
        method: 'POST',
        path: '/v1/chat/completions',
        json: { model: 'x', messages: [{ role: 'user', content: longPrompt }], max_tokens: 4, stream: true },
      }),
    );
    save('error-malformed-json', await call(base, { method: 'POST', path: '/v1/chat/completions', raw: '{"model": "x", "messages": [' }));
    save('error-missing-messages', await call(base, { method: 'POST', path: '/v1/chat/completions', json: { model: 'x' } }));
    save('error-404', await call(base, { method: 'GET', path: '/v1/does-not-exist' }));
    save(
      'error-response-format-json',
      await call(base, {
        method: 'POST',
        path: '/v1/chat/completions',
        json: { model: 'x', messages: chatMessages, max_tokens: 8, response_format: { type: 'json_object' } },
      }),
    );

    const metrics = await call(base, { method: 'GET', path: '/metrics' });
    write('metrics.txt', metrics.bodyText ?? '');
    save('metrics', metrics);

    // ---------------------------------------------------- busy: 6 streams on 4 slots
    const streams = await Promise.all(Array.from({ length: 4 }, () => openStream(base, 100_000)));
    const queuedAc = new AbortController();
    const queued = Array.from({ length: 2 }, () =>
      fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'x', messages: chatMessages, max_tokens: 8, stream: true }),
        signal: queuedAc.signal,
      }).then(
        (r) => ({ t: Date.now(), status: r.status }),
        () => null,
      ),
    );
    await sleep(500);
    const busyMetrics = await call(base, { method: 'GET', path: '/metrics' });
    write('metrics-busy.txt', busyMetrics.bodyText ?? '');
    save('metrics-busy', busyMetrics);
    save('slots-busy', await call(base, { method: 'GET', path: '/slots' }));
    save('slots-fail-on-no-slot', await call(base, { method: 'GET', path: '/slots?fail_on_no_slot=1' }));
    const tAbort = Date.now();
    for (const s of streams) s.abort();
    const q = await Promise.all(queued);
    console.log(`  queued streams got headers ${q.map((x) => (x === null ? 'never' : `${x.status} after ${x.t - tAbort} ms from the abort of the busy ones`)).join(', ')}`);
    queuedAc.abort();
    await sleep(1500);
    save('slots-after-abort', await call(base, { method: 'GET', path: '/slots' }));
  } finally {
    await srv.close();
  }

  // ------------------------------------------------------------ with --api-key
  const authed = await startLlamaServer({ slots: 1, ctx: 512, apiKey: 'sk-test-123' });
  try {
    const base = authed.url;
    save('auth-models-no-key', await call(base, { method: 'GET', path: '/v1/models' }));
    save('auth-models-wrong-key', await call(base, { method: 'GET', path: '/v1/models', headers: { authorization: 'Bearer nope' } }));
    save('auth-models-x-api-key', await call(base, { method: 'GET', path: '/v1/models', headers: { 'x-api-key': 'sk-test-123' } }));
    save('auth-health-no-key', await call(base, { method: 'GET', path: '/health' }));
    save('auth-metrics-no-key', await call(base, { method: 'GET', path: '/metrics' }));
    save('auth-slots-no-key', await call(base, { method: 'GET', path: '/slots' }));
  } finally {
    await authed.close();
  }

  // ------------------------------------------------------------ --no-jinja: JSON mode works
  const nojinja = await startLlamaServer({ slots: 1, ctx: 512, extraArgs: ['--no-jinja'] });
  try {
    save(
      'chat-completion-json-object-no-jinja',
      await call(nojinja.url, {
        method: 'POST',
        path: '/v1/chat/completions',
        json: { model: 'x', messages: chatMessages, max_tokens: 16, response_format: { type: 'json_object' } },
      }),
    );
  } finally {
    await nojinja.close();
  }
}

async function main(): Promise<void> {
  const build = await resolveLlamaBuild();
  setCachePrefix(build.cacheDir);
  mkdirSync(OUT, { recursive: true });
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt > 0 ? process.argv[onlyAt + 1] : undefined;
  if (only !== undefined && only !== 'base' && only !== 'surfaces') throw new Error('--only takes base or surfaces');
  console.log(`recording into ${OUT}`);
  if (only !== 'surfaces') await recordBase(build);
  if (only !== 'base') await recordSurfaces(build);
  console.log('done');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
