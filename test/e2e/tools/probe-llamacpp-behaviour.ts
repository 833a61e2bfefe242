// Measure behaviours of the real llama-server that the gateway depends on
// (queueing, cancellation on client disconnect, startup time, speed) and
// print them. Not a test: a tool to re-check facts after a llama.cpp bump.
//
//   node test/e2e/tools/probe-llamacpp-behaviour.ts

import { setTimeout as sleep } from 'node:timers/promises';

import { startLlamaServer } from '../helpers/llama-server.ts';

const messages = [{ role: 'user', content: 'Tell me a long story.' }];

interface SlotInfo {
  id: number;
  is_processing: boolean;
  n_ctx: number;
}

async function slots(base: string): Promise<SlotInfo[]> {
  const r = await fetch(`${base}/slots`);
  return (await r.json()) as SlotInfo[];
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.split(' ')[1]);
}

/** ms until no slot is processing (polling every 5 ms), or -1 after `limitMs`. */
async function msUntilIdle(base: string, from: number, limitMs = 10_000): Promise<number> {
  while (Date.now() - from < limitMs) {
    const s = await slots(base);
    if (s.every((x) => !x.is_processing)) return Date.now() - from;
    await sleep(5);
  }
  return -1;
}

function chat(base: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'x', messages, ...body }),
    signal,
  });
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const srv = await startLlamaServer({ slots: 4, ctx: 2048 });
  console.log(`startup to /health 200: ${Date.now() - t0} ms`);
  console.log(`command: ${srv.args.join(' ')}`);
  const base = srv.url;
  try {
    const s0 = await slots(base);
    console.log(`slots: ${s0.length}, n_ctx per slot: ${s0.map((s) => s.n_ctx).join(',')}`);

    // speed
    {
      const t = Date.now();
      const r = await chat(base, { max_tokens: 256, stream: false });
      const j = (await r.json()) as { usage: { completion_tokens: number }; timings?: { predicted_per_second?: number } };
      console.log(
        `non-stream 256 tokens: ${Date.now() - t} ms, completion_tokens=${j.usage.completion_tokens}, predicted_per_second=${j.timings?.predicted_per_second?.toFixed(0)}`,
      );
    }

    // 10 concurrent streams on 4 slots
    {
      const ac = new AbortController();
      const t = Date.now();
      const results = Array.from({ length: 10 }, async () => {
        const r = await chat(base, { max_tokens: 200, stream: true }, ac.signal);
        const headersAt = Date.now() - t;
        const text = await r.text();
        return { status: r.status, headersAt, done: text.includes('[DONE]'), endAt: Date.now() - t };
      });
      await sleep(150);
      const deferred = await metric(base, 'llamacpp:requests_deferred');
      const processing = await metric(base, 'llamacpp:requests_processing');
      const all = await Promise.all(results);
      console.log(`10 streams / 4 slots: at 150 ms processing=${processing} deferred=${deferred}`);
      console.log(
        `  status ${[...new Set(all.map((a) => a.status))].join(',')}, all [DONE]: ${all.every((a) => a.done)}; headers at (ms): ${all
          .map((a) => a.headersAt)
          .sort((a, b) => a - b)
          .join(' ')}; ends at: ${all
          .map((a) => a.endAt)
          .sort((a, b) => a - b)
          .join(' ')}`,
      );
    }

    // streaming client disconnect
    {
      const ac = new AbortController();
      const r = await chat(base, { max_tokens: 100_000, stream: true }, ac.signal);
      const reader = r.body!.getReader();
      await reader.read();
      await sleep(200);
      const tAbort = Date.now();
      ac.abort();
      console.log(`stream dropped by client: slot idle after ${await msUntilIdle(base, tAbort)} ms`);
    }

    // non-streaming client disconnect
    {
      const ac = new AbortController();
      const p = chat(base, { max_tokens: 100_000, stream: false }, ac.signal).catch(() => null);
      await sleep(300);
      const busy = (await slots(base)).some((s) => s.is_processing);
      const tAbort = Date.now();
      ac.abort();
      await p;
      console.log(`non-stream dropped by client (busy before: ${busy}): slot idle after ${await msUntilIdle(base, tAbort)} ms`);
    }

    // queued (deferred) stream: when do its headers come?
    {
      const ac = new AbortController();
      const hogs = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const r = await chat(base, { max_tokens: 100_000, stream: true }, ac.signal);
          const rd = r.body!.getReader();
          await rd.read();
          return rd;
        }),
      );
      const t = Date.now();
      let headersAfter = -1;
      const queued = chat(base, { max_tokens: 4, stream: true }).then(async (r) => {
        headersAfter = Date.now() - t;
        return r.text();
      });
      await sleep(1000);
      console.log(`queued stream behind 4 busy slots: headers after 1 s? ${headersAfter >= 0 ? `yes (${headersAfter} ms)` : 'no'}`);
      const tFree = Date.now();
      ac.abort();
      for (const h of hogs) void h.cancel().catch(() => undefined);
      await queued;
      console.log(`  headers arrived ${headersAfter} ms after sending, ${Date.now() - tFree} ms after the busy streams were dropped`);
      await msUntilIdle(base, Date.now());
    }

    // generation that runs into the end of the slot context
    {
      const r = await chat(base, { max_tokens: 100_000, stream: false });
      const j = (await r.json()) as { choices: Array<{ finish_reason: string }>; usage: Record<string, number> };
      console.log(`max_tokens beyond the slot context: status ${r.status}, finish_reason ${j.choices?.[0]?.finish_reason}, usage ${JSON.stringify(j.usage)}`);
    }
  } finally {
    await srv.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
