/**
 * Data zones (issue 12 item 4), on a real gateway and simulators that count what reached them: a request
 * confined to the on-prem zone never reaches the external backend — not when on-prem is down, fails every
 * request, has its circuit open or its queue full, nor through retries or affinity. It fails with a 503
 * instead. Keys override their tenant's zones; an unrestricted tenant uses the cheaper external backend.
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.ts';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { closedAfterEach, post } from '../../helpers/gateway.ts';

const { sim, gateway: gatewayWith } = closedAfterEach();
const vault = generateApiKey(); // tenant vault: onprem only
const open = generateApiKey(); // tenant open: anywhere
const bridge = generateApiKey(); // tenant vault, but the key itself allows both zones
const model = 'Qwen/Qwen3-8B';

async function fleet(onpremOptions: Record<string, unknown> = {}, onpremBackend: Record<string, unknown> = {}) {
  const onprem = await sim({ flavor: 'vllm', ...onpremOptions });
  const external = await sim({ flavor: 'vllm' });
  const gateway = await gatewayWith({
    backends: [
      { id: 'onprem', kind: 'vllm', url: onprem.url, zone: 'onprem', cost: { perHour: 10 }, ...onpremBackend },
      // An OpenAI-compatible endpoint outside (played by a simulator), cheaper per token.
      { id: 'external', kind: 'openai', url: `${external.url}/v1`, zone: 'external', cost: { inputPer1M: 0.01, outputPer1M: 0.01 } },
    ],
    zones: { onprem: { sensitive: true }, external: { sensitive: false } },
    models: [
      {
        name: 'm',
        policy: 'cheapest',
        retries: 3,
        targets: [
          { backend: 'onprem', model },
          { backend: 'external', model },
        ],
      },
    ],
    auth: {
      mode: 'keys',
      keys: [
        { id: 'vault', hash: vault.hash, tenant: 'vault' },
        { id: 'open', hash: open.hash, tenant: 'open' },
        { id: 'bridge', hash: bridge.hash, tenant: 'vault', zones: ['onprem', 'external'] },
      ],
    },
    tenants: { vault: { allowedZones: ['onprem'] } },
  });
  return { onprem, external, gateway };
}

const chat = (url: string, key: { secret: string }, extra: Record<string, unknown> = {}) =>
  post(`${url}/v1/chat/completions`, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4, ...extra }), {
    'content-type': 'application/json',
    authorization: `Bearer ${key.secret}`,
  });

const upstream = (simulator: Simulator) => simulator.stats().requests;

describe('data zones', () => {
  it('keeps a confined tenant in its zone while others use any zone; a key may widen its tenant', async () => {
    const { onprem, external, gateway } = await fleet();
    const sdk = new OpenAI({ apiKey: vault.secret, baseURL: gateway.baseURL, maxRetries: 0 });
    for (let index = 0; index < 4; index++) {
      const answer = await sdk.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `vault ${index}` }], max_tokens: 4 }).withResponse();
      expect(answer.response.headers.get('x-switchyard-backend')).toBe('onprem');
    }
    expect(upstream(external)).toBe(0);
    expect((await chat(gateway.url, open)).headers.get('x-switchyard-backend')).toBe('external'); // cheapest, allowed
    expect((await chat(gateway.url, bridge)).headers.get('x-switchyard-backend')).toBe('external');
    expect(upstream(onprem)).toBe(4);
  });

  it('does not fall back outside the zone when the zone is down: 503 no byte out', async () => {
    const { onprem, external, gateway } = await fleet();
    await onprem.close();
    const answers = await Promise.all(Array.from({ length: 5 }, () => chat(gateway.url, vault)));
    for (const answer of answers) {
      expect([502, 503]).toContain(answer.status); // refused connection (then marked down): never a failover outside
      expect(answer.json.error.type).toBe('server_error');
    }
    expect((await chat(gateway.url, vault)).status).toBe(503);
    expect(upstream(external)).toBe(0);
    expect((await chat(gateway.url, open)).status).toBe(200); // the unconfined tenant is served outside
  });

  it('does not cross the zone under failing attempts and retries, an open circuit, or a full queue', async () => {
    const { onprem, external, gateway } = await fleet({ failRate: 1, failMode: '500' }, { circuit: { consecutiveFailures: 2 }, maxConcurrency: 1, queue: { maxSize: 0 } });
    for (let index = 0; index < 4; index++) expect((await chat(gateway.url, vault)).status).toBeGreaterThanOrEqual(500);
    const attempts = upstream(onprem);
    const afterOpen = await chat(gateway.url, vault); // the circuit is open: refused without an attempt
    expect(afterOpen.status).toBe(503);
    expect(upstream(onprem)).toBe(attempts);
    expect(upstream(external)).toBe(0);

    // A full queue: the one slot held by a slow answer, the next confined request is refused, not sent out.
    const slowFleet = await fleet({ tokensPerSecond: 10 }, { maxConcurrency: 1, queue: { maxSize: 0 } });
    const holding = chat(slowFleet.gateway.url, vault, { max_tokens: 20 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    const refused = await chat(slowFleet.gateway.url, vault);
    expect([429, 503]).toContain(refused.status);
    expect((await holding).status).toBe(200);
    expect(upstream(slowFleet.external)).toBe(0);
  });

  it('answers 503 no_backend_in_zone when the model has no backend in the allowed zones', async () => {
    const external = await sim({ flavor: 'vllm' });
    const gateway = await gatewayWith({
      backends: [{ id: 'external', kind: 'openai', url: `${external.url}/v1`, zone: 'external' }],
      zones: { onprem: { sensitive: true }, external: {} },
      models: [{ name: 'm', targets: [{ backend: 'external', model }] }],
      auth: { mode: 'keys', keys: [{ id: 'vault', hash: vault.hash, tenant: 'vault' }] },
      tenants: { vault: { allowedZones: ['onprem'] } },
    });
    const answer = await chat(gateway.url, vault);
    expect(answer.status).toBe(503);
    expect(answer.json.error).toMatchObject({ code: 'no_backend_in_zone', type: 'server_error' });
    expect(answer.json.error.message).toContain('onprem');
    expect(upstream(external)).toBe(0);
  });

  it('refuses a config that names a zone no backend is in', () => {
    expect(() =>
      validateConfig({
        backends: [{ id: 'a', kind: 'vllm', url: 'http://127.0.0.1:1', zone: 'onprem' }],
        models: [{ name: 'm', targets: [{ backend: 'a', model }] }],
        tenants: { t: { allowedZones: ['onprme'] } },
      }),
    ).toThrow(/tenants\.t\.allowedZones: unknown zone "onprme"/);
  });
});
