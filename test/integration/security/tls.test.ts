/**
 * TLS on the gateway's listener and mutual TLS (issue 12 item 1), with real certificates made by openssl: the
 * official SDK talks HTTPS to the gateway; with a client CA, a verified client certificate listed in
 * server.tls.clients identifies its holder (tenant, models) without an API key, while a certificate of an
 * unlisted subject, or one signed by another CA, gets nothing; `clientCert: required` refuses the handshake
 * without a certificate.
 */
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { type CertificateSet, makeCertificates } from '../../helpers/certificates.ts';
import { closedAfterEach, startSim } from '../../helpers/gateway.ts';

const { gateway: gatewayWith } = closedAfterEach();
const apiKey = generateApiKey();
let certificates: CertificateSet;
let sim: Simulator;

beforeAll(async () => {
  certificates = makeCertificates();
  sim = await startSim({ flavor: 'vllm' });
});
afterAll(async () => {
  certificates?.remove();
  await sim?.close();
});

function config(tls: Record<string, unknown>) {
  return {
    server: { tls: { certFile: certificates.serverCert, keyFile: certificates.serverKey, ...tls } },
    backends: [{ id: 'sim', kind: 'vllm', url: sim.url }],
    models: [
      { name: 'chat', targets: [{ backend: 'sim', model: sim.options.model }] },
      { name: 'other', targets: [{ backend: 'sim', model: sim.options.model }] },
    ],
    auth: { mode: 'keys', keys: [{ id: 'app', hash: apiKey.hash, tenant: 'team-b' }] },
  };
}

function agent(client?: { cert: Buffer; key: Buffer }): Agent {
  return new Agent({ connect: { ca: certificates.ca, ...(client ?? {}) } });
}

async function chat(url: string, dispatcher: Agent, headers: Record<string, string> = {}, model = 'chat') {
  const response = await undiciFetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
  });
  return { status: response.status, body: (await response.json()) as { error?: { code: string } } };
}

describe('TLS listener', () => {
  it('serves the SDK over HTTPS with the server certificate', async () => {
    const gateway = await gatewayWith(config({}));
    expect(gateway.url.startsWith('https://')).toBe(true);
    const dispatcher = agent();
    const client = new OpenAI({ apiKey: apiKey.secret, baseURL: gateway.baseURL, maxRetries: 0, fetch: undiciFetch as never, fetchOptions: { dispatcher } as never });
    const answer = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 });
    expect(answer.choices[0]?.message.content).toBeTypeOf('string');
    // Plain HTTP to the TLS port gets no answer from the gateway's routes.
    await expect(fetch(`${gateway.url.replace('https://', 'http://')}/v1/models`).then((response) => response.status)).rejects.toThrow();
  });
});

describe('mutual TLS', () => {
  it('lets a listed, verified client certificate stand in for an API key, and nothing else', async () => {
    const gateway = await gatewayWith(config({ clientCaFile: certificates.caFile, clients: { 'svc-a': { tenant: 'team-a', models: ['chat'] } } }));
    const holder = agent(certificates.client('svc-a'));
    expect((await chat(gateway.url, holder)).status).toBe(200);
    expect((await chat(gateway.url, holder, {}, 'other')).body.error?.code).toBe('model_not_allowed');
    const line = gateway.logs.map((entry) => JSON.parse(entry) as Record<string, unknown>).find((entry) => entry.keyId === 'cert:svc-a');
    expect(line?.tenant).toBe('team-a');
    // A certificate from the CA but not listed, and a listed CN signed by another CA: no identity, need a key.
    expect((await chat(gateway.url, agent(certificates.client('svc-unknown')))).status).toBe(401);
    expect((await chat(gateway.url, agent(certificates.client('svc-a', 'stranger')))).status).toBe(401);
    // Without a certificate (optional): the API key works as before.
    expect((await chat(gateway.url, agent(), { authorization: `Bearer ${apiKey.secret}` })).status).toBe(200);
    expect((await chat(gateway.url, agent())).status).toBe(401);
  });

  it('refuses the handshake without a valid client certificate when required', async () => {
    const gateway = await gatewayWith(config({ clientCaFile: certificates.caFile, clientCert: 'required', clients: { 'svc-a': { tenant: 'team-a' } } }));
    await expect(chat(gateway.url, agent(), { authorization: `Bearer ${apiKey.secret}` })).rejects.toThrow();
    await expect(chat(gateway.url, agent(certificates.client('svc-a', 'stranger')))).rejects.toThrow();
    expect((await chat(gateway.url, agent(certificates.client('svc-a')))).status).toBe(200);
  });
});
