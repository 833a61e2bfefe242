/**
 * Bearer JWTs (issue 12 item 1), against a real gateway, a simulator and a JWKS served by a real local HTTP
 * server. Tokens are signed here with keys generated for the test (RS256, ES256, EdDSA). Checked: a valid
 * token is served through the openai SDK with its claims applied (tenant, models, rpm, zones); expired, not
 * yet valid, wrong issuer or audience, unknown kid, `alg: none`, HS256 signed with the public key (algorithm
 * confusion) and a forged signature are refused with 401 in our shape; key rotation is picked up on the
 * unknown kid, with fetches bounded by the cooldown; an unreachable JWKS is 503 auth_unavailable; a JWKS file
 * works air-gapped; API keys keep working in keys+jwt mode and are refused in jwt mode.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { closedAfterEach, post, startSim } from '../../helpers/gateway.ts';

const issuer = 'https://idp.example.test';
const audience = 'switchyard';
const model = 'Qwen/Qwen3-8B';

interface SigningKey {
  kid: string;
  alg: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  publicJwk: JWK;
  publicPem: string;
}

async function signingKey(alg: 'RS256' | 'ES256' | 'EdDSA'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${alg}-${randomUUID().slice(0, 8)}`;
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, publicPem: await exportSPKI(publicKey) };
}

function token(key: SigningKey, claims: Record<string, unknown> = {}, options: { exp?: number | string; nbf?: number; iss?: string; aud?: string } = {}): Promise<string> {
  const jwt = new SignJWT({ tenant: 'team-a', ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setIssuer(options.iss ?? issuer)
    .setAudience(options.aud ?? audience)
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m');
  if (options.nbf !== undefined) jwt.setNotBefore(options.nbf);
  return jwt.sign(key.privateKey);
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A JWKS endpoint whose key set the test changes; counts fetches. */
class JwksServer {
  keys: JWK[] = [];
  fetches = 0;
  server!: Server;
  url = '';
  async start(): Promise<void> {
    this.server = createServer((_request, response) => {
      this.fetches++;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }
  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let sim: Simulator;
let rsa: SigningKey;
let ec: SigningKey;
let ed: SigningKey;
let jwks: JwksServer;
const apiKey = generateApiKey();
const { gateway: gatewayWith } = closedAfterEach();

beforeAll(async () => {
  [sim, rsa, ec, ed] = await Promise.all([startSim({ flavor: 'vllm' }), signingKey('RS256'), signingKey('ES256'), signingKey('EdDSA')]);
  jwks = new JwksServer();
  await jwks.start();
});
afterAll(async () => {
  await Promise.all([sim?.close(), jwks?.stop()]);
});

function gatewayConfig(jwt: Record<string, unknown>, mode = 'keys+jwt') {
  return {
    backends: [{ id: 'onprem', kind: 'vllm', url: sim.url, zone: 'onprem' }],
    zones: { onprem: { sensitive: true } },
    models: [
      { name: 'chat', targets: [{ backend: 'onprem', model }] },
      { name: 'secret-model', targets: [{ backend: 'onprem', model }] },
    ],
    auth: { mode, keys: [{ id: 'app', hash: apiKey.hash, tenant: 'team-b' }], jwt: { issuer, audience, ...jwt } },
  };
}

const chat = (url: string, bearer: string, body: Record<string, unknown> = {}) =>
  post(`${url}/v1/chat/completions`, JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...body }), {
    'content-type': 'application/json',
    authorization: `Bearer ${bearer}`,
  });

describe('JWT authentication with a JWKS URL', () => {
  it('serves a valid token through the SDK and applies its claims (models, rpm, zones)', async () => {
    jwks.keys = [rsa.publicJwk, ec.publicJwk, ed.publicJwk];
    const gateway = await gatewayWith(gatewayConfig({ jwksUrl: jwks.url }));
    for (const key of [rsa, ec, ed]) {
      const client = new OpenAI({ apiKey: await token(key), baseURL: gateway.baseURL, maxRetries: 0 });
      const answer = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 });
      expect(answer.choices[0]?.message.content).toBeTypeOf('string');
    }
    const limited = await token(rsa, { models: ['chat'], rpm: 1 });
    expect((await chat(gateway.url, limited, { model: 'secret-model' })).json.error.code).toBe('model_not_allowed');
    expect((await chat(gateway.url, limited)).status).toBe(200);
    expect((await chat(gateway.url, limited)).status).toBe(429); // rpm 1 from the claim
    const elsewhere = await chat(gateway.url, await token(ec, { zones: ['external'] }));
    expect(elsewhere.status).toBe(503);
    expect(elsewhere.json.error.code).toBe('no_backend_in_zone');
    // The API key still works next to tokens (keys+jwt).
    expect((await chat(gateway.url, apiKey.secret)).status).toBe(200);
    const line = gateway.logs.map((entry) => JSON.parse(entry) as Record<string, unknown>).find((entry) => entry.keyId === 'jwt:alice');
    expect(line?.tenant).toBe('team-a');
  });

  it('refuses expired, early, wrong-issuer, wrong-audience, unsigned, HS256-confused and forged tokens with 401', async () => {
    jwks.keys = [rsa.publicJwk];
    const gateway = await gatewayWith(gatewayConfig({ jwksUrl: jwks.url, clockSkewSeconds: 5 }));
    const now = Math.floor(Date.now() / 1000);
    const forger = await signingKey('RS256');
    const cases: Array<[string, string, RegExp]> = [
      ['expired', await token(rsa, {}, { exp: now - 60 }), /expired/],
      ['not yet valid', await token(rsa, {}, { nbf: now + 120 }), /nbf/],
      ['wrong issuer', await token(rsa, {}, { iss: 'https://evil.example' }), /iss/],
      ['wrong audience', await token(rsa, {}, { aud: 'someone-else' }), /aud/],
      ['alg none', `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ iss: issuer, aud: audience, sub: 'mallory', exp: now + 300 })}.`, /not allowed|malformed/],
      [
        'HS256 with the public key as secret',
        await new SignJWT({ tenant: 'team-a' })
          .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
          .setIssuer(issuer)
          .setAudience(audience)
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(rsa.publicPem)),
        /not allowed/,
      ],
      ['forged signature (kid of a known key)', await token({ ...forger, kid: rsa.kid }), /signature/],
      ['unknown kid', await token(forger), /kid/],
      ['not a JWT at all', 'eyJ.not.ajwt', /malformed|not accepted/],
    ];
    for (const [name, bearer, why] of cases) {
      const answer = await chat(gateway.url, bearer);
      expect({ name, status: answer.status }).toEqual({ name, status: 401 });
      expect(answer.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key' });
      expect(answer.json.error.message).toMatch(why);
    }
    // Within the skew: a token that expired 2 s ago is still accepted with clockSkewSeconds 5.
    expect((await chat(gateway.url, await token(rsa, {}, { exp: now - 2 }))).status).toBe(200);
  });

  it('picks up a rotated key on its unknown kid, and bounds JWKS fetches by the cooldown', async () => {
    jwks.keys = [rsa.publicJwk];
    const gateway = await gatewayWith(gatewayConfig({ jwksUrl: jwks.url, jwksCooldownMs: 200 }));
    expect((await chat(gateway.url, await token(rsa))).status).toBe(200);
    const next = await signingKey('ES256');
    jwks.keys = [rsa.publicJwk, next.publicJwk];
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await chat(gateway.url, await token(next))).status).toBe(200);
    // A flood of tokens naming unknown kids: at most one fetch per cooldown, not one per request.
    const before = jwks.fetches;
    const strangers = await Promise.all(Array.from({ length: 30 }, () => signingKey('ES256').then((key) => token(key))));
    const answers = await Promise.all(strangers.map((bearer) => chat(gateway.url, bearer)));
    expect(answers.every((answer) => answer.status === 401)).toBe(true);
    expect(jwks.fetches - before).toBeLessThanOrEqual(1);
  });

  it("applies a token's guard claim over the tenant's policy", async () => {
    jwks.keys = [rsa.publicJwk];
    const gateway = await gatewayWith({ ...gatewayConfig({ jwksUrl: jwks.url }), guard: { enabled: true, actions: { email: 'redact' } } });
    const content = 'mail jane@example.com';
    expect((await chat(gateway.url, await token(rsa), { messages: [{ role: 'user', content }] })).status).toBe(200);
    const strict = await chat(gateway.url, await token(rsa, { guard: { email: 'block' } }), { messages: [{ role: 'user', content }] });
    expect(strict.json.error.code).toBe('sensitive_data_blocked');
  });

  it('answers 503 auth_unavailable when the JWKS cannot be fetched', async () => {
    const gateway = await gatewayWith(gatewayConfig({ jwksUrl: 'http://127.0.0.1:9/jwks.json', jwksTimeoutMs: 500 }));
    const answer = await chat(gateway.url, await token(rsa));
    expect(answer.status).toBe(503);
    expect(answer.json.error.code).toBe('auth_unavailable');
  });
});

describe('JWT authentication with a JWKS file', () => {
  it('verifies against the file, and refuses API keys in jwt mode', async () => {
    const file = join(tmpdir(), `jwks-${randomUUID()}.json`);
    writeFileSync(file, JSON.stringify({ keys: [ed.publicJwk] }));
    const gateway = await gatewayWith(gatewayConfig({ jwksFile: file }, 'jwt'));
    expect((await chat(gateway.url, await token(ed))).status).toBe(200);
    const key = await chat(gateway.url, apiKey.secret);
    expect(key.status).toBe(401);
    expect(key.json.error.message).toContain('not a JWT');
    expect((await fetch(`${gateway.url}/v1/models`)).status).toBe(401);
  });
});
