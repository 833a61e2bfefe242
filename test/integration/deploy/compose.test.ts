/**
 * docker-compose.yml: valid for Compose (Debian's `docker-compose config`, which
 * validates against the compose schema and interpolates variables), with the
 * services, profiles, ports and volumes deploy/README.md promises; the simulator
 * commands parse; the gateway config it mounts validates with the environment
 * compose gives it; .env.example and deploy/README.md cover every variable.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../../src/config/load.ts';
import { parseSimArgs } from '../../../src/sim/cli.ts';
import { requireTool, run } from '../../helpers/prometheus.ts';

const root = resolve(import.meta.dirname, '../../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: Array<string | { target: number; published?: string | number; host_ip?: string }>;
  volumes?: Array<string | { type: string; source: string; target: string; read_only?: boolean }>;
  profiles?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  stop_grace_period?: string;
  healthcheck?: { test: string[] };
  deploy?: { resources?: { reservations?: { devices?: Array<{ driver?: string; count?: string | number; capabilities?: string[] }> } } };
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** `docker-compose config` with only the variables given (no .env, no host environment). */
function composeConfig(envFile: string, extraEnv: Record<string, string> = {}): ComposeFile {
  const binary = requireTool('docker-compose');
  const result = run(binary, ['--env-file', envFile, '--project-directory', root, '-f', join(root, 'docker-compose.yml'), 'config'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), ...extraEnv },
  });
  if (result.status !== 0) throw new Error(`docker-compose config failed (exit ${result.status}):\n${result.output}`);
  expect(result.stderr).not.toMatch(/WARNING/i);
  return parseYaml(result.stdout) as ComposeFile;
}

/** `${VAR}` / `${VAR:-default}` references in a YAML file (comments and compose's `$$` escapes skipped), with their defaults. */
function variableReferences(text: string): Map<string, string | undefined> {
  const found = new Map<string, string | undefined>();
  const code = text
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, ''))
    .join('\n');
  for (const match of code.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g)) {
    const [, name = '', fallback] = match;
    if (!found.has(name) || found.get(name) === undefined) found.set(name, fallback);
  }
  return found;
}

function envExample(): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of read('.env.example').split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) values.set(match[1] ?? '', match[2] ?? '');
  }
  return values;
}

function publishedPorts(service: ComposeService): Array<{ host: string; container: number; ip: string }> {
  return (service.ports ?? []).map((port) => {
    if (typeof port === 'string') {
      const parts = port.replace(/\/tcp$/, '').split(':');
      return { ip: parts.length === 3 ? (parts[0] ?? '') : '', host: parts.at(-2) ?? '', container: Number(parts.at(-1)) };
    }
    return { ip: port.host_ip ?? '', host: String(port.published ?? ''), container: port.target };
  });
}

function bindMounts(service: ComposeService): Array<{ source: string; target: string; readOnly: boolean }> {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume === 'string') {
      const [source = '', target = '', mode = ''] = volume.split(':');
      return { source, target, readOnly: mode.split(',').includes('ro') };
    }
    return { source: volume.source, target: volume.target, readOnly: volume.read_only === true };
  });
}

describe('docker-compose.yml', () => {
  let dir: string;
  let compose: ComposeFile;
  let services: Record<string, ComposeService>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-compose-'));
    writeFileSync(join(dir, 'empty.env'), '');
    compose = composeConfig(join(dir, 'empty.env'));
    services = compose.services;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is valid for `docker-compose config`, with no variables set and with .env.example', () => {
    expect(Object.keys(services).sort()).toEqual(['gateway', 'grafana', 'llamacpp', 'prometheus', 'redis', 'sim-llamacpp', 'sim-vllm', 'vllm']);
    const withExample = composeConfig(join(root, '.env.example'));
    // .env.example lists the defaults: the resolved file is the same either way.
    expect(withExample).toEqual(compose);
  });

  it('accepts a port range for scaling the gateway out (--scale gateway=3)', () => {
    const scaled = composeConfig(join(dir, 'empty.env'), { GATEWAY_PORT: '8080-8082' });
    expect(publishedPorts(scaled.services.gateway ?? {})).toEqual([{ ip: '127.0.0.1', host: '8080-8082', container: 8080 }]);
  });

  it('starts gateway, Redis, Prometheus and Grafana in every profile; backends by profile', () => {
    for (const name of ['gateway', 'redis', 'prometheus', 'grafana']) expect(services[name]?.profiles ?? [], name).toEqual([]);
    expect(services['sim-vllm']?.profiles).toEqual(['sim']);
    expect(services['sim-llamacpp']?.profiles).toEqual(['sim']);
    expect(services.llamacpp?.profiles).toEqual(['cpu']);
    expect(services.vllm?.profiles).toEqual(['gpu']);
    // Nothing outside a profile may depend on a profiled service (compose would refuse to start).
    for (const [name, service] of Object.entries(services)) {
      if ((service.profiles ?? []).length > 0) continue;
      const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const dep of deps) expect(services[dep]?.profiles ?? [], `${name} depends on ${dep}`).toEqual([]);
    }
  });

  it('runs the gateway from the image built here, with the compose config mounted and a stop grace period above the drain time', () => {
    const gateway = services.gateway ?? {};
    expect(gateway.build?.context).toBe(root);
    expect(gateway.image).toBe('switchyard:local');
    expect(gateway.command).toEqual(['serve', '--config', '/etc/switchyard/switchyard.yaml']);
    expect(bindMounts(gateway)).toContainEqual({ source: join(root, 'deploy/compose/switchyard.yaml'), target: '/etc/switchyard/switchyard.yaml', readOnly: true });
    const config = loadConfigFile(join(root, 'deploy/compose/switchyard.yaml'), gateway.environment ?? {});
    expect(config.server.port).toBe(8080);
    expect(config.server.host).toBe('0.0.0.0');
    // /metrics and /admin on their own port, not published, and the one Prometheus scrapes.
    expect(config.admin.port).toBe(9464);
    expect(publishedPorts(gateway).map((port) => port.container)).not.toContain(config.admin.port);
    const prometheus = parseYaml(read('deploy/prometheus/prometheus.yml')) as {
      scrape_configs: Array<{ job_name: string; dns_sd_configs?: Array<{ names: string[]; port: number }> }>;
    };
    const job = prometheus.scrape_configs.find((candidate) => candidate.job_name === 'switchyard');
    expect(job?.dns_sd_configs?.[0]).toMatchObject({ names: ['gateway'], port: config.admin.port });
    expect(config.redis?.url).toBe('redis://redis:6379/0');
    const graceSeconds = Number(/^(\d+)s$/.exec(gateway.stop_grace_period ?? '')?.[1]);
    expect(graceSeconds * 1000).toBeGreaterThan(config.server.shutdownGraceMs);
    expect(publishedPorts(gateway)).toEqual([{ ip: '127.0.0.1', host: '8080', container: 8080 }]);
  });

  it('passes every variable the gateway config uses into the gateway container', () => {
    const used = [...variableReferences(read('deploy/compose/switchyard.yaml')).keys()];
    const given = Object.keys(services.gateway?.environment ?? {});
    expect(used.filter((name) => !given.includes(name))).toEqual([]);
  });

  it('points the gateway at the simulators by default, and the simulators parse as `switchyard sim` flags', () => {
    const config = loadConfigFile(join(root, 'deploy/compose/switchyard.yaml'), services.gateway?.environment ?? {});
    const urls = Object.fromEntries(config.backends.map((backend) => [backend.id, backend.url]));
    for (const [name, flavor, backendId] of [
      ['sim-vllm', 'vllm', 'vllm'],
      ['sim-llamacpp', 'llamacpp', 'llamacpp'],
    ] as const) {
      const service = services[name] ?? {};
      expect(service.image).toBe('switchyard:local');
      expect(service.command?.[0]).toBe('sim');
      const options = parseSimArgs(service.command?.slice(1) ?? []);
      expect(options.flavor).toBe(flavor);
      expect(options.host).toBe('0.0.0.0');
      expect(urls[backendId]).toBe(`http://${name}:${options.port}`);
      // The simulator serves the model id the gateway asks this backend for.
      const target = config.models.flatMap((model) => model.targets).find((t) => t.backend === backendId);
      expect(options.model).toBe(target?.model);
      expect(service.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${options.port}/health`);
    }
  });

  it('runs llama.cpp from the official server image on CPU with a model volume and --metrics', () => {
    const llamacpp = services.llamacpp ?? {};
    expect(llamacpp.image).toBe('ghcr.io/ggml-org/llama.cpp:server');
    expect(llamacpp.command).toContain('--metrics');
    expect(llamacpp.command?.join(' ')).toMatch(/--model \/models\/\S+\.gguf/);
    expect(llamacpp.command?.join(' ')).toContain('--host 0.0.0.0 --port 8080');
    expect(bindMounts(llamacpp)).toContainEqual({ source: join(root, 'models'), target: '/models', readOnly: true });
    expect(llamacpp.deploy?.resources?.reservations?.devices).toBeUndefined();
  });

  it('runs vLLM with an NVIDIA GPU reservation', () => {
    const vllm = services.vllm ?? {};
    expect(vllm.image).toMatch(/^vllm\/vllm-openai:/);
    expect(vllm.deploy?.resources?.reservations?.devices).toEqual([{ driver: 'nvidia', count: 'all', capabilities: ['gpu'] }]);
    expect(vllm.command?.join(' ')).toContain('--host 0.0.0.0 --port 8000');
  });

  it('mounts the Prometheus and Grafana files where their configs expect them', () => {
    const prometheus = services.prometheus ?? {};
    expect(bindMounts(prometheus)).toContainEqual({ source: join(root, 'deploy/prometheus'), target: '/etc/prometheus', readOnly: true });
    expect(prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const grafana = services.grafana ?? {};
    const mounts = bindMounts(grafana);
    expect(mounts).toContainEqual({ source: join(root, 'deploy/grafana/provisioning'), target: '/etc/grafana/provisioning', readOnly: true });
    expect(mounts).toContainEqual({ source: join(root, 'deploy/grafana/dashboards'), target: '/etc/grafana/dashboards', readOnly: true });
    const provider = parseYaml(read('deploy/grafana/provisioning/dashboards/switchyard.yml')) as { providers: Array<{ options: { path: string } }> };
    expect(provider.providers[0]?.options.path).toBe('/etc/grafana/dashboards');
    expect(grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe('/etc/grafana/dashboards/switchyard.json');
    const datasources = parseYaml(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: Array<{ type: string; url: string }> };
    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
  });

  it('documents every variable in .env.example with the default the compose file uses', () => {
    const example = envExample();
    const references = new Map([...variableReferences(read('docker-compose.yml')), ...variableReferences(read('deploy/compose/switchyard.yaml'))]);
    // Fixed by docker-compose.yml inside the container, not operator settings.
    for (const fixed of ['PORT', 'METRICS_PORT', 'SHUTDOWN_GRACE_MS']) references.delete(fixed);
    expect([...references.keys()].filter((name) => !example.has(name)).sort(), 'variables missing from .env.example').toEqual([]);
    expect([...example.keys()].filter((name) => !references.has(name)).sort(), 'variables in .env.example that nothing uses').toEqual([]);
    const composeDefaults = variableReferences(read('docker-compose.yml'));
    for (const [name, value] of example) {
      if (composeDefaults.has(name)) expect(value, `${name} in .env.example`).toBe(composeDefaults.get(name) ?? '');
    }
  });

  it('has every service, port, volume and variable in deploy/README.md', () => {
    const readme = read('deploy/README.md');
    const named = (text: string) => readme.includes(`\`${text}\``);
    const ports = Object.values(services).flatMap((service) => publishedPorts(service).map((port) => port.host));
    const expected = [...Object.keys(services), ...ports, ...Object.keys(compose.volumes ?? {}), ...envExample().keys()];
    expect(
      expected.filter((name) => !named(name)),
      'not named in deploy/README.md',
    ).toEqual([]);
    expect(readme).toContain('docker compose --profile sim up');
  });
});
