/**
 * config/sensitive.example.yaml, the one file with every sensitive-data control (issue 12), run as it is: only
 * its environment variables point it at this test's parts — simulators for the on-prem vLLM and llama.cpp and
 * the hosted endpoint, certificates made by openssl, a JWKS file of a key generated here, a temporary audit
 * file. Through one gateway: JWT identities and a client certificate, a tenant kept on-prem, a confined
 * category, redaction, a block, per-model prefix-cache isolation, and an audit chain that verifies.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Registry as PromRegistry } from 'prom-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { verifyFiles } from '../../../src/audit/verify.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { createLogger } from '../../../src/logging.ts';
import { type RunningGateway, startGateway } from '../../../src/server.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { type CertificateSet, makeCertificates } from '../../helpers/certificates.ts';
import { startSim } from '../../helpers/gateway.ts';

const file = resolve(import.meta.dirname, '../../../config/sensitive.example.yaml');
const directory = mkdtempSync(join(tmpdir(), 'swy-sensitive-'));
const auditFile = join(directory, 'audit.jsonl');
const auditKey = 'the audit key of this test, 32+ chars';
let certificates: CertificateSet;
let vllm: Simulator;
let llama: Simulator;
let hosted: Simulator;
let gateway: RunningGateway;
let sign: (claims: Record<string, unknown>) => Promise<string>;

beforeAll(async () => {
  certificates = makeCertificates();
  [vllm, llama, hosted] = await Promise.all([startSim({ flavor: 'vllm' }), startSim({ flavor: 'llamacpp' }), startSim({ flavor: 'vllm' })]);
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwksFile = join(directory, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'ES256' }] }));
  sign = (claims) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
      .setIssuer('https://idp.test')
      .setAudience('switchyard')
      .setSubject('someone')
      .setExpirationTime('10m')
      .sign(privateKey);
  const config = loadConfigFile(file, {
    TLS_CERT_FILE: certificates.serverCert,
    TLS_KEY_FILE: certificates.serverKey,
    TLS_CLIENT_CA_FILE: certificates.caFile,
    ONPREM_VLLM_URL: vllm.url,
    ONPREM_VLLM_MODEL: vllm.options.model,
    ONPREM_LLAMA_URL: llama.url,
    ONPREM_LLAMA_MODEL: llama.options.model,
    HOSTED_URL: `${hosted.url}/v1`,
    HOSTED_MODEL: hosted.options.model,
    JWKS_FILE: jwksFile,
    JWT_ISSUER: 'https://idp.test',
    SWITCHYARD_AUDIT_KEY: auditKey,
    SWITCHYARD_AUDIT_FILE: auditFile,
  });
  gateway = await startGateway(config, {
    port: 0,
    host: '127.0.0.1',
    logger: createLogger({ logging: { level: 'warn', logPrompts: false } } as never),
    promRegistry: new PromRegistry(),
  });
});
afterAll(async () => {
  await gateway?.shutdown('test done');
  await Promise.all([vllm?.close(), llama?.close(), hosted?.close()]);
  certificates?.remove();
  rmSync(directory, { recursive: true, force: true });
});

const plain = () => new Agent({ connect: { ca: certificates.ca } });
async function chat(content: string, options: { token?: string; agent?: Agent; model?: string } = {}) {
  const response = await undiciFetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: options.agent ?? plain(),
    headers: { 'content-type': 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
    body: JSON.stringify({ model: options.model ?? 'chat', messages: [{ role: 'user', content }], max_tokens: 4 }),
  });
  return { status: response.status, backend: response.headers.get('x-switchyard-backend'), body: (await response.json()) as { error?: { code: string } } };
}
const hostedCount = () => hosted.stats().requests;
const seen = (simulator: Simulator) => JSON.stringify(simulator.stats().lastRequest?.body ?? null);

it('runs every control from the one example file', { timeout: 60_000 }, async () => {
  expect(gateway.url.startsWith('https://')).toBe(true);
  expect((await chat('hello')).status).toBe(401); // jwt mode: no token, no answer

  // The clinic tenant stays on-prem whatever is cheaper; its e-mail addresses are redacted before leaving.
  const clinic = await sign({ org: 'clinic' });
  const before = hostedCount();
  for (let index = 0; index < 3; index++) {
    const answer = await chat(`write to doctor${index}@clinic.example about it`, { token: clinic });
    expect(answer.status).toBe(200);
    expect(answer.backend?.startsWith('onprem-')).toBe(true);
    expect(seen(answer.backend === 'onprem-vllm' ? vllm : llama)).toContain('[EMAIL_1]');
  }
  expect(hostedCount()).toBe(before);

  // Any tenant: a patient id (a configured pattern, confined) keeps the request on-prem; a card is refused.
  const acme = await sign({ org: 'acme' });
  const confined = await chat('summarise the file of PAT-12345678', { token: acme });
  expect(confined.backend?.startsWith('onprem-')).toBe(true);
  expect(hostedCount()).toBe(before);
  const card = await chat('charge 4111 1111 1111 1111', { token: acme });
  expect(card.status).toBe(400);
  expect(card.body.error?.code).toBe('sensitive_data_blocked');
  // research blocks addresses (its own policy over the global redact).
  expect((await chat('mail x@y.example', { token: await sign({ org: 'research' }) })).body.error?.code).toBe('sensitive_data_blocked');

  // A service with a client certificate, no token: served as tenant billing, on-prem.
  const billing = new Agent({ connect: { ca: certificates.ca, ...certificates.client('billing-service') } });
  const service = await chat('monthly totals', { agent: billing });
  expect(service.status).toBe(200);
  expect(service.backend?.startsWith('onprem-')).toBe(true);

  // private-chat isolates tenants' prefix caches: a cache_salt on vLLM, cache_prompt: false on llama.cpp.
  // The router picks between the two by load and price: ask until each has served one (a bounded number of times).
  const servedIsolated = (simulator: Simulator) => seen(simulator).includes('isolated ');
  for (let index = 0; index < 4 || (index < 40 && !(servedIsolated(vllm) && servedIsolated(llama))); index++)
    await chat(`isolated ${index}`, { token: acme, model: 'private-chat' });
  expect(seen(vllm)).toContain('cache_salt');
  expect(seen(llama)).toContain('"cache_prompt":false');

  await gateway.shutdown('test done');
  const verified = verifyFiles([auditFile], auditKey);
  expect(verified).toMatchObject({ ok: true });
  expect(verified.records).toBeGreaterThanOrEqual(14); // start + 13 requests + shutdown
});
