/**
 * The image, without a Docker engine: the Dockerfile's stages and runtime
 * settings (non-root, HEALTHCHECK with node, SIGTERM, exec form, config path);
 * every file it copies exists and passes .dockerignore; and the runtime stage's
 * layout (dist/ from `npm run build`, bin/, config/, healthcheck.mjs) actually
 * works: it serves with the compose config, passes its health check, answers a
 * request, runs the simulator, and exits 0 on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, waitFor } from '../../helpers/gateway.ts';
import { freePort, run } from '../../helpers/prometheus.ts';

const root = resolve(import.meta.dirname, '../../..');

interface Instruction {
  name: string;
  args: string;
  stage: string;
}

/** Dockerfile instructions (continuations joined, comments dropped), each with its stage name. */
function parseDockerfile(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  let stage = '';
  return logical.map((line) => {
    const [name = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (name.toUpperCase() === 'FROM') stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? '';
    return { name: name.toUpperCase(), args, stage };
  });
}

/** .dockerignore semantics: last matching pattern wins, `!` re-includes, a matched directory covers its contents. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negate = line.startsWith('!');
      const pattern = (negate ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
      const source = pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replaceAll('**', '\u0000')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replaceAll('\u0000', '.*');
      return { negate, regex: new RegExp(`^${source}$`) };
    });
  return (path: string) => {
    const prefixes = path.split('/').map((_, index, parts) => parts.slice(0, index + 1).join('/'));
    let ignored = false;
    for (const rule of rules) if (prefixes.some((prefix) => rule.regex.test(prefix))) ignored = !rule.negate;
    return ignored;
  };
}

function filesUnder(path: string): string[] {
  const full = join(root, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));
}

describe('Dockerfile', () => {
  const instructions = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  const final = instructions.filter((instruction) => instruction.stage === instructions.at(-1)?.stage);
  const last = (name: string) => final.filter((instruction) => instruction.name === name).at(-1);

  it('builds in stages: npm ci + npm run build, production-only dependencies, a runtime stage', () => {
    const stages = instructions.filter((instruction) => instruction.name === 'FROM').map((instruction) => instruction.stage);
    expect(stages).toEqual(['build', 'deps', 'runtime']);
    const runs = (stage: string) =>
      instructions
        .filter((instruction) => instruction.stage === stage && instruction.name === 'RUN')
        .map((instruction) => instruction.args)
        .join('\n');
    expect(runs('build')).toMatch(/npm ci\b/);
    expect(runs('build')).toMatch(/npm run build\b/);
    expect(runs('deps')).toMatch(/npm ci --omit=dev\b/);
    const copies = final.filter((instruction) => instruction.name === 'COPY').map((instruction) => instruction.args);
    expect(copies).toContain('--from=deps /app/node_modules ./node_modules');
    expect(copies).toContain('--from=build /app/dist ./dist');
    expect(copies.some((copy) => copy.includes('--from=build') && copy.includes('node_modules'))).toBe(false);
  });

  it('runs as a numeric non-root user, with a node health check, SIGTERM and exec-form entrypoint', () => {
    expect(last('USER')?.args).toMatch(/^[1-9]\d*(:\d+)?$/);
    const healthcheck = last('HEALTHCHECK')?.args ?? '';
    const command = JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD') + 3).trim()) as string[];
    expect(command[0]).toBe('node');
    expect(command[1]).toBe('/app/healthcheck.mjs');
    expect(last('STOPSIGNAL')?.args).toBe('SIGTERM');
    expect(JSON.parse(last('ENTRYPOINT')?.args ?? '')).toEqual(['node', '/app/bin/switchyard.js']);
    expect(JSON.parse(last('CMD')?.args ?? '')).toEqual(['serve']);
    const env = final
      .filter((instruction) => instruction.name === 'ENV')
      .map((instruction) => instruction.args)
      .join(' ');
    expect(env).toContain('SWITCHYARD_CONFIG=/etc/switchyard/switchyard.yaml');
    expect(env).toContain('HOST=0.0.0.0');
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignored = dockerignore(readFileSync(join(root, '.dockerignore'), 'utf8'));
    const sources = instructions
      .filter((instruction) => instruction.name === 'COPY' && !instruction.args.startsWith('--from'))
      .flatMap((instruction) => instruction.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) {
      expect(existsSync(join(root, source)), source).toBe(true);
      for (const file of filesUnder(source)) expect(ignored(file), `${file} is excluded by .dockerignore`).toBe(false);
    }
    for (const kept of ['.env', '.git/config', 'node_modules/fastify/package.json', 'models/x.gguf', 'test/helpers/gateway.ts', 'deploy/k8s/deployment.yaml', 'dist/main.js']) {
      expect(ignored(kept), `${kept} should stay out of the build context`).toBe(true);
    }
  });
});

describe('the runtime stage layout', () => {
  let app: string;
  let sim: Simulator;
  const children: ChildProcess[] = [];

  /** Starts `node /app/bin/switchyard.js ...args` the way the image does. */
  function start(args: string[], env: Record<string, string>) {
    const child = spawn(process.execPath, [join(app, 'bin/switchyard.js'), ...args], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, exit, output: () => output };
  }

  function healthcheck(args: string[], env: Record<string, string> = {}) {
    return run(process.execPath, [join(app, 'healthcheck.mjs'), ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeoutMs: 10_000 });
  }

  beforeAll(async () => {
    // Mirror the runtime stage: /app/{dist,bin,config,package.json,healthcheck.mjs,node_modules}.
    app = join(mkdtempSync(join(tmpdir(), 'switchyard-image-')), 'app');
    mkdirSync(app);
    // `npm run build` with the output moved; type errors are `npm run typecheck`'s business,
    // tsc still emits, and what matters here is that the emitted JavaScript runs.
    run(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', join(app, 'dist')], { cwd: root, timeoutMs: 120_000 });
    expect(existsSync(join(app, 'dist/main.js')), 'tsc produced dist/main.js').toBe(true);
    cpSync(join(root, 'bin'), join(app, 'bin'), { recursive: true });
    cpSync(join(root, 'config'), join(app, 'config'), { recursive: true });
    cpSync(join(root, 'package.json'), join(app, 'package.json'));
    cpSync(join(root, 'deploy/docker/healthcheck.mjs'), join(app, 'healthcheck.mjs'));
    symlinkSync(join(root, 'node_modules'), join(app, 'node_modules'));
    sim = await startSim({ flavor: 'vllm', model: 'Qwen/Qwen3-0.6B' });
  }, 120_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await sim?.close();
    if (app) rmSync(resolve(app, '..'), { recursive: true, force: true });
  });

  it("validates the compose config and the image's default config with the compiled CLI", () => {
    for (const file of [join(root, 'deploy/compose/switchyard.yaml'), join(app, 'config/switchyard.yaml')]) {
      const result = run(process.execPath, [join(app, 'bin/switchyard.js'), 'config', 'check', file], { env: { PATH: process.env.PATH ?? '', HOST: '0.0.0.0', PORT: '8080' } });
      expect(result.status, result.output).toBe(0);
    }
  });

  it('serves from $SWITCHYARD_CONFIG, passes the HEALTHCHECK, answers, keeps /metrics on the metrics port, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const gateway = start(['serve'], {
      SWITCHYARD_CONFIG: join(root, 'deploy/compose/switchyard.yaml'),
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      // No Redis here: the gateway serves anyway (cache bypassed, limits open).
      REDIS_URL: `redis://127.0.0.1:${await freePort()}/0`,
      VLLM_URL: sim.url,
      LLAMACPP_URL: `http://127.0.0.1:${await freePort()}`,
      SHUTDOWN_GRACE_MS: '3000',
      LOG_LEVEL: 'warn',
    });
    // The compose config listens on 0.0.0.0; loopback reaches it.
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 15_000, `gateway ready\n${gateway.output()}`);
    const check = healthcheck([], { PORT: String(port) });
    expect(check.status, check.output).toBe(0);

    const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { model: string }).model).toBe('chat');
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { connection: 'close' } })).status).toBe(404);
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { headers: { connection: 'close' } });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('switchyard_requests_total{model="chat",backend="vllm"');

    const stoppedAt = Date.now();
    gateway.child.kill('SIGTERM');
    expect(await gateway.exit).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    const after = healthcheck([`http://127.0.0.1:${port}/healthz`]);
    expect(after.status).toBe(1);
    expect(after.stderr).toContain('health check');
  }, 40_000);

  it('runs the simulator the compose `sim` profile uses, and stops it on SIGTERM', async () => {
    const port = await freePort();
    const simulator = start(['sim', '--flavor=llamacpp', '--host=127.0.0.1', `--port=${port}`, '--model=qwen3-0.6b', '--api-key='], {});
    await waitFor(() => simulator.output().includes('listening on'), 15_000, `simulator start\n${simulator.output()}`);
    const check = healthcheck([`http://127.0.0.1:${port}/health`]);
    expect(check.status, check.output).toBe(0);
    simulator.child.kill('SIGTERM');
    expect(await simulator.exit).toBe(0);
  }, 30_000);
});
