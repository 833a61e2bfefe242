import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterShared } from '../../../src/cluster/config.ts';
import { ConfigError, loadConfigFile, validateConfig } from '../../../src/config/load.ts';

const minimal = {
  backends: [{ id: 'a', kind: 'vllm', url: 'http://127.0.0.1:8000' }],
  models: [{ name: 'm', targets: [{ backend: 'a', model: 'x' }] }],
};

function problemsOf(raw: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    validateConfig(raw, 'test', env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('config validation', () => {
  it('fills defaults and freezes the result', () => {
    const config = validateConfig(minimal, 'test', {});
    expect(config.server.port).toBe(8080);
    expect(config.server.bodyLimitBytes).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    expect(config.backends[0]?.timeouts.firstByteMs).toBe(120_000);
    expect(config.models[0]?.policy).toBe('least-loaded');
    expect(config.models[0]?.retries).toBe(2);
    expect(Object.isFrozen(config.server)).toBe(true);
  });

  it('reports every problem as path: message', () => {
    const problems = problemsOf({
      server: { port: 'abc', colour: 'blue' },
      backends: [{ id: 'a', kind: 'tgi', url: 'ftp://x' }],
      models: [{ name: 'm', targets: [{ backend: 'a' }] }],
    });
    expect(problems).toEqual([
      'server.colour: is not a known option',
      'server.port: expected integer',
      'backends[0].kind: must be one of vllm, llamacpp, sglang, openai (got "tgi")',
      'backends[0].url: must match ^https?:// (got "ftp://x")',
      'models[0].targets[0].model: is required',
    ]);
  });

  it('cluster sharing: auto follows redis, true without redis is refused', () => {
    expect(clusterShared(validateConfig(minimal, 'test', {}))).toBe(false);
    expect(clusterShared(validateConfig({ ...minimal, redis: { url: 'redis://127.0.0.1:6379' } }, 'test', {}))).toBe(true);
    expect(clusterShared(validateConfig({ ...minimal, redis: { url: 'redis://127.0.0.1:6379' }, cluster: { shared: false } }, 'test', {}))).toBe(false);
    expect(problemsOf({ ...minimal, cluster: { shared: true } })).toEqual(['cluster.shared: true needs a `redis` section (the replicas share through it)']);
    expect(problemsOf({ ...minimal, cluster: { shared: 'yes' } })).toHaveLength(1);
  });

  it('requires backends and models', () => {
    expect(problemsOf({})).toEqual(['backends: is required', 'models: is required']);
  });

  it('checks references and duplicate names', () => {
    const problems = problemsOf({
      backends: [
        { id: 'a', kind: 'vllm', url: 'http://h:1' },
        { id: 'a', kind: 'llamacpp', url: 'http://h:2' },
      ],
      models: [
        { name: 'm', aliases: ['n'], targets: [{ backend: 'zz', model: 'x' }] },
        { name: 'n', targets: [{ backend: 'a', model: 'x' }] },
      ],
    });
    expect(problems).toEqual([
      'backends[1].id: duplicate backend id "a"',
      'models[0].targets[0].backend: unknown backend "zz" (known: a)',
      'models[1].name: "n" is already used by models[0].aliases[0]',
    ]);
  });

  it('interpolates ${VAR} and ${VAR:-default} and coerces numbers', () => {
    const config = validateConfig(
      { ...minimal, server: { port: '${PORT:-9999}', host: '${HOST}' }, backends: [{ id: 'a', kind: 'vllm', url: 'http://${BACKEND_HOST}:8000', apiKey: '$${not-a-var}' }] },
      'test',
      { HOST: '0.0.0.0', BACKEND_HOST: 'gpu1' },
    );
    expect(config.server.port).toBe(9999);
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.backends[0]?.url).toBe('http://gpu1:8000');
    expect(config.backends[0]?.apiKey).toBe('${not-a-var}');
  });

  it('leaves tracing off by default and checks its section like the others', () => {
    expect(validateConfig(minimal, 'test', {}).tracing).toEqual({
      enabled: false,
      endpoint: 'http://127.0.0.1:4318/v1/traces',
      serviceName: 'switchyard',
      sampleRatio: 1,
      headers: {},
      exportTimeoutMs: 10_000,
      maxQueueSize: 2048,
    });
    expect(problemsOf({ ...minimal, tracing: { enabled: true, endpoint: 'collector:4318', sampleRatio: 2, colour: 'red' } })).toEqual([
      'tracing.colour: is not a known option',
      'tracing.endpoint: must match ^https?:// (got "collector:4318")',
      'tracing.sampleRatio: expected number to be less or equal to 1',
    ]);
  });

  it('names a missing environment variable with its path', () => {
    expect(problemsOf({ ...minimal, server: { host: '${GATEWAY_HOST}' } })).toEqual([
      'server.host: environment variable GATEWAY_HOST is not set (use ${GATEWAY_HOST:-default} for a default)',
    ]);
  });

  it('reports YAML syntax errors and unreadable files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swy-config-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'server: [unclosed\n');
    expect(() => loadConfigFile(file, {})).toThrow(/\(yaml\):/);
    expect(() => loadConfigFile(join(dir, 'missing.yaml'), {})).toThrow(/\(file\): cannot read/);
  });

  it('accepts the shipped example and demo configs', () => {
    expect(() => loadConfigFile('config/switchyard.example.yaml', {})).not.toThrow();
    expect(() => loadConfigFile('config/switchyard.yaml', {})).not.toThrow();
    expect(() => loadConfigFile('config/demo.yaml', { DEMO_VLLM_URL: 'http://127.0.0.1:1', DEMO_LLAMACPP_URL: 'http://127.0.0.1:2' })).not.toThrow();
  });
});
