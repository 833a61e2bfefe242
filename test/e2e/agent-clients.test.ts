/**
 * Real coding agents, unchanged, through the gateway in front of a real llama-server:
 * OpenAI's Codex CLI (`codex exec`, Responses API, custom model provider at the
 * gateway) and Anthropic's Claude Code (`claude -p`, Messages API,
 * ANTHROPIC_BASE_URL at the gateway). The tiny model talks nonsense; what must
 * hold is the protocol: each client completes its turn and exits 0, with API
 * keys on (Codex sends `Authorization: Bearer`, Claude Code `x-api-key`), both
 * when the backend serves the surface natively and when the gateway translates
 * it onto chat completions.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateApiKey } from '../../src/limits/api-keys.ts';
import type { TestGateway } from '../helpers/gateway.ts';
import { Cleanup, PUBLIC_MODEL, startGatewayFor, startServers } from './helpers/e2e.ts';
import type { LlamaServer } from './helpers/llama-server.ts';
import { resolveAgentClients, type AgentClients } from './setup/agent-clients.ts';

const cleanup = new Cleanup();
const key = generateApiKey();
let clients: AgentClients;
let server: LlamaServer;
let work: string;

/** The backend serves Responses and Messages on its own paths (llama.cpp does), or the gateway translates them onto chat. */
const modes = {
  native: { surfaces: { responses: 'native', messages: 'native' } },
  translated: { surfaces: { responses: 'translate', messages: 'translate' } },
} as const;
const gateways: Partial<Record<keyof typeof modes, TestGateway>> = {};

beforeAll(async () => {
  clients = resolveAgentClients();
  // Two slots of 8192 tokens (Codex's first prompt is ~5,000 tokens). The tiny model rarely ends a turn by itself;
  // a bias towards its end-of-sequence token (id 2) ends answers after a few tokens with finish_reason stop, as a
  // real model's turn ends (a cut at a token limit is `incomplete`, which Codex rightly reports as an error);
  // -n is only the safety net.
  [server] = (await startServers(1, { slots: 2, ctx: 8192, extraArgs: ['-n', '256', '--logit-bias', '2+3'] }, cleanup)) as [LlamaServer];
  for (const [mode, backend] of Object.entries(modes) as Array<[keyof typeof modes, Record<string, unknown>]>) {
    gateways[mode] = await startGatewayFor({ llama: server }, cleanup, {
      backend,
      top: { auth: { mode: 'keys', keys: [{ id: 'agent', hash: key.hash, tenant: 'agents' }] }, admin: { token: 'e2e-admin-token-0123456789' } },
    });
  }
  work = mkdtempSync(path.join(tmpdir(), 'switchyard-agents-'));
  cleanup.add(async () => rmSync(work, { recursive: true, force: true }));
});

afterAll(() => cleanup.run());

interface Run {
  code: number | null;
  output: string;
}

function runClient(command: string, args: string[], env: Record<string, string>, cwd: string, timeoutMs = 150_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The gateway's request lines for a path, from its captured log. */
function requestLines(gateway: TestGateway, pathPrefix: string): Array<{ url: string; status: number }> {
  return gateway.logs
    .map((line) => JSON.parse(line) as { msg?: string; url?: string; status?: number })
    .filter((line) => line.msg === 'request completed' && line.url?.startsWith(pathPrefix))
    .map((line) => ({ url: line.url as string, status: line.status as number }));
}

describe.each(Object.keys(modes) as Array<keyof typeof modes>)('coding agents through the gateway (%s)', (mode) => {
  it('Codex CLI completes a turn with `codex exec` over the Responses API', { timeout: 180_000 }, async () => {
    const gateway = gateways[mode] as TestGateway;
    const home = path.join(work, `codex-${mode}`);
    const cwd = path.join(home, 'project');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(
      path.join(home, 'config.toml'),
      [
        `model = "${PUBLIC_MODEL}"`,
        'model_provider = "switchyard"',
        '[model_providers.switchyard]',
        'name = "Switchyard"',
        `base_url = "${gateway.baseURL}"`,
        'env_key = "SWITCHYARD_API_KEY"',
        'wire_api = "responses"',
        'request_max_retries = 0',
        'stream_max_retries = 0',
        '',
      ].join('\n'),
    );
    const run = await runClient(clients.codex, ['exec', '--skip-git-repo-check', 'Say hello in one word.'], { CODEX_HOME: home, HOME: home, SWITCHYARD_API_KEY: key.secret }, cwd);
    expect(run.code, `${run.output}\ngateway requests: ${JSON.stringify(requestLines(gateway, '/'))}`).toBe(0);
    const requests = requestLines(gateway, '/v1/responses');
    expect(requests.length, run.output).toBeGreaterThan(0);
    expect(
      requests.every((request) => request.status === 200),
      JSON.stringify(requests),
    ).toBe(true);
  });

  it('Claude Code completes a turn with `claude -p` over the Messages API', { timeout: 180_000 }, async () => {
    const gateway = gateways[mode] as TestGateway;
    const home = path.join(work, `claude-${mode}`);
    mkdirSync(home, { recursive: true });
    const run = await runClient(
      clients.claude,
      ['-p', 'Say hello in one word.', '--model', PUBLIC_MODEL],
      {
        HOME: home,
        ANTHROPIC_BASE_URL: gateway.url,
        ANTHROPIC_API_KEY: key.secret,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_AUTOUPDATER: '1',
        DISABLE_TELEMETRY: '1',
      },
      home,
    );
    expect(run.code, `${run.output}\ngateway requests: ${JSON.stringify(requestLines(gateway, '/'))}`).toBe(0);
    const requests = requestLines(gateway, '/v1/messages');
    expect(requests.length, run.output).toBeGreaterThan(0);
    expect(
      requests.some((request) => request.status === 200),
      JSON.stringify(requests),
    ).toBe(true);
  });
});
