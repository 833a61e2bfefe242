/**
 * Loads the YAML config: `${VAR}` / `${VAR:-default}` interpolation in string
 * values, schema defaults and coercion, validation with every problem reported
 * as `path: message`, cross-reference checks, then a frozen object.
 */
import { guardCategories, GuardScanner } from '../guard/detect.ts';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { Value, type ValueError } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { backendKind } from '../backends/kinds/index.ts';
import { ConfigSchema, type SwitchyardConfig } from './schema.ts';

/** Thrown when a config cannot be used; `problems` are `path: message` lines. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(`invalid configuration in ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** What a refused config reload says: each problem as `path: message`. */
export function reloadProblems(error: unknown): string[] {
  return error instanceof ConfigError ? error.problems : [(error as Error).message];
}

const variablePattern = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function interpolate(value: unknown, path: string, env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(variablePattern, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$$') return '$';
      const found = env[name ?? ''];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push(`${path || '(root)'}: environment variable ${name} is not set (use \${${name}:-default} for a default)`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, `${path}[${index}]`, env, problems));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = interpolate(item, path ? `${path}.${key}` : key, env, problems);
    return out;
  }
  return value;
}

function formatPath(pointer: string): string {
  if (pointer === '') return '(root)';
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
}

function literalChoices(schema: TSchema): string[] | undefined {
  const anyOf = (schema as { anyOf?: Array<{ const?: unknown }> }).anyOf;
  if (!anyOf?.every((branch) => branch.const !== undefined)) return undefined;
  return anyOf.map((branch) => String(branch.const));
}

function describe(error: ValueError): string {
  const choices = literalChoices(error.schema);
  if (choices) return `must be one of ${choices.join(', ')} (got ${JSON.stringify(error.value)})`;
  if (error.message === 'Expected required property') return 'is required';
  if (error.message.startsWith('Unexpected property')) return 'is not a known option';
  const pattern = (error.schema as { pattern?: string }).pattern;
  if (pattern && typeof error.value === 'string') return `must match ${pattern} (got ${JSON.stringify(error.value)})`;
  return error.message.charAt(0).toLowerCase() + error.message.slice(1);
}

function crossCheck(config: SwitchyardConfig, problems: string[]): void {
  const backendIds = new Set<string>();
  config.backends.forEach((backend, index) => {
    if (backendIds.has(backend.id)) problems.push(`backends[${index}].id: duplicate backend id "${backend.id}"`);
    backendIds.add(backend.id);
  });
  if (config.auth.mode === 'jwt' || config.auth.mode === 'keys+jwt') {
    const jwt = config.auth.jwt;
    if (!jwt) problems.push(`auth.jwt: required with auth.mode ${config.auth.mode} (jwksFile or jwksUrl, issuer, audience)`);
    else if ((jwt.jwksFile === undefined) === (jwt.jwksUrl === undefined)) problems.push('auth.jwt: set exactly one of jwksFile and jwksUrl');
  }
  if (config.cluster.shared === true && config.redis === undefined) problems.push('cluster.shared: true needs a `redis` section (the replicas share through it)');
  if (config.audit.enabled && config.audit.hmacKey === undefined) problems.push('audit.hmacKey: required when audit.enabled is true (32+ characters)');
  const categories = new Set<string>([...guardCategories, ...config.guard.patterns.map((pattern) => pattern.name)]);
  const guardActions: Array<[string, Record<string, string>]> = [['guard.actions', config.guard.actions]];
  for (const [tenant, policy] of Object.entries(config.tenants)) if (policy.guard) guardActions.push([`tenants.${tenant}.guard`, policy.guard]);
  config.auth.keys.forEach((key, index) => {
    if (key.guard) guardActions.push([`auth.keys[${index}].guard`, key.guard]);
  });
  for (const [zone, policy] of Object.entries(config.zones)) if (policy.guard) guardActions.push([`zones.${zone}.guard`, policy.guard]);
  for (const [where, actions] of guardActions) {
    for (const category of Object.keys(actions)) if (!categories.has(category)) problems.push(`${where}.${category}: unknown category (known: ${[...categories].join(', ')})`);
  }
  try {
    new GuardScanner([...categories], config.guard.patterns);
  } catch (error) {
    problems.push((error as Error).message);
  }
  const zones = new Set([...config.backends.map((backend) => backend.zone), ...Object.keys(config.zones)]);
  const knownZone = (zone: string, where: string) => {
    if (!zones.has(zone)) problems.push(`${where}: unknown zone "${zone}" (no backend is in it; known: ${[...zones].join(', ')})`);
  };
  for (const [tenant, policy] of Object.entries(config.tenants)) for (const zone of policy.allowedZones ?? []) knownZone(zone, `tenants.${tenant}.allowedZones`);
  config.auth.keys.forEach((key, index) => {
    for (const zone of key.zones ?? []) knownZone(zone, `auth.keys[${index}].zones`);
  });
  const publicNames = new Map<string, string>();
  config.models.forEach((model, index) => {
    for (const [position, name] of [model.name, ...model.aliases].entries()) {
      const where = position === 0 ? `models[${index}].name` : `models[${index}].aliases[${position - 1}]`;
      const previous = publicNames.get(name);
      if (previous) problems.push(`${where}: "${name}" is already used by ${previous}`);
      else publicNames.set(name, where);
    }
    model.targets.forEach((target, targetIndex) => {
      if (!backendIds.has(target.backend)) {
        problems.push(`models[${index}].targets[${targetIndex}].backend: unknown backend "${target.backend}" (known: ${[...backendIds].join(', ')})`);
      }
    });
    if ((model.isolation ?? config.isolation.mode) === 'tenant') {
      const where = model.isolation ? `models[${index}].isolation` : 'isolation.mode';
      for (const target of model.targets) {
        const backend = config.backends.find((entry) => entry.id === target.backend);
        if (backend && backendKind(backend.kind).tenantIsolation === undefined) {
          problems.push(`${where}: backend "${backend.id}" of model "${model.name}" (kind ${backend.kind}) has no way to keep tenants' prefix caches apart`);
        }
      }
    }
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/** Validates an already-parsed config object (from YAML or code). */
export function validateConfig(raw: unknown, source = 'config', env: NodeJS.ProcessEnv = process.env): SwitchyardConfig {
  const problems: string[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(source, ['(root): must be a YAML mapping']);
  const interpolated = interpolate(raw, '', env, problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  const withDefaults = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, structuredClone(interpolated)));
  const seen = new Set<string>();
  for (const error of Value.Errors(ConfigSchema, withDefaults)) {
    const path = formatPath(error.path);
    if (seen.has(path)) continue;
    seen.add(path);
    problems.push(`${path}: ${describe(error)}`);
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  const config = withDefaults as SwitchyardConfig;
  crossCheck(config, problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return deepFreeze(config);
}

/** Reads, interpolates and validates a YAML config file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): SwitchyardConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`(file): cannot read: ${(error as Error).message}`]);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(file, [`(yaml): ${(error as Error).message.split('\n')[0]}`]);
  }
  return validateConfig(parsed, file, env);
}
