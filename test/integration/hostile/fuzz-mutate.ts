/**
 * Request mutations for the fuzz run: structural edits of a valid request
 * (fields removed, retyped, oversized, deeply nested, unknown fields), byte-level
 * damage of its JSON, and odd content types. Deterministic for a seed.
 */
import type { FuzzSurface } from './fuzz-surfaces.ts';

/** A seeded generator of floats in [0, 1) (mulberry32). */
export type Random = () => number;

export function random(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rng: Random, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)] as T;
}

/** Deep nesting is kept as a marker string and expanded in the serialised text (our own JSON.stringify would overflow). */
function nested(depth: number, asArray: boolean): string {
  return `@@deep:${depth}:${asArray ? 'a' : 'o'}@@`;
}

function expandNesting(text: string): string {
  return text.replace(/"@@deep:(\d+):([ao])@@"/g, (_, depth: string, kind: string) => {
    const levels = Number(depth);
    return kind === 'a' ? `${'['.repeat(levels)}1${']'.repeat(levels)}` : `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
  });
}

const strings = [
  '',
  ' ',
  'x',
  'null',
  '0',
  '-1',
  'true',
  '\u0000',
  '\ud800',
  '💥'.repeat(50),
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '%2e%2e/',
  '{"a":1}',
  'data: [DONE]\n\n',
  'a'.repeat(70_000),
];
const numbers = [0, -1, 1, 1.5, -0.5, 2 ** 31, 2 ** 53 + 2, -(2 ** 53), 1e308, -1e308, 5e-324, 4096, 100_000_000];

/** A value of a random kind, some of them hostile. */
export function randomValue(rng: Random, depth = 0): unknown {
  const roll = rng();
  if (roll < 0.1) return null;
  if (roll < 0.18) return rng() < 0.5;
  if (roll < 0.36) return pick(rng, numbers);
  if (roll < 0.55) return pick(rng, strings);
  if (roll < 0.62)
    // 150-900 levels: past the gateway's 128-level bound, within what runtimes parse (deep-nesting.test.ts covers thousands).
    return nested(150 + Math.floor(rng() * 750), rng() < 0.5);
  if (roll < 0.66) return Array.from({ length: 2000 + Math.floor(rng() * 8000) }, (_, index) => index);
  if (roll < 0.82 && depth < 3) return Array.from({ length: Math.floor(rng() * 4) }, () => randomValue(rng, depth + 1));
  if (depth < 3) {
    const object: Record<string, unknown> = {};
    const keys = ['role', 'content', 'type', 'text', 'name', 'arguments', 'tool_calls', 'id', '__proto__', 'constructor', 'image_url', 'url'];
    for (let index = Math.floor(rng() * 4); index > 0; index--) object[pick(rng, keys)] = randomValue(rng, depth + 1);
    return object;
  }
  return {};
}

type Container = Record<string, unknown> | unknown[];

/** Every container in the value with a way to reach a slot inside it. */
function slots(value: unknown, out: Array<{ parent: Container; key: string | number }>, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      out.push({ parent: value, key: index });
      slots(item, out, depth + 1);
    });
  } else {
    for (const [key, item] of Object.entries(value)) {
      out.push({ parent: value as Record<string, unknown>, key });
      slots(item, out, depth + 1);
    }
  }
}

function mutateStructure(rng: Random, request: Record<string, unknown>, surface: FuzzSurface): void {
  const found: Array<{ parent: Container; key: string | number }> = [];
  slots(request, found);
  const target = found.length > 0 ? pick(rng, found) : undefined;
  const roll = rng();
  if (roll < 0.15 && target) {
    if (Array.isArray(target.parent)) target.parent.splice(target.key as number, 1);
    else delete target.parent[target.key as string];
  } else if (roll < 0.6 && target) {
    (target.parent as Record<string | number, unknown>)[target.key] = randomValue(rng);
  } else if (roll < 0.75) {
    request[pick(rng, surface.knownFields)] = randomValue(rng);
  } else if (roll < 0.85) {
    request[`x_${Math.floor(rng() * 1000)}`] = randomValue(rng);
  } else if (roll < 0.92) {
    request.model = pick(rng, ['m-vllm', 'm-llama', 'm-both', 'nope', '', 'm-vllm/../x', 'M-VLLM', 'a'.repeat(5000)]);
  } else {
    request.stream = pick(rng, [true, false, 'true', 1, null]);
  }
}

function damageBytes(rng: Random, text: string): string {
  const at = Math.floor(rng() * (text.length + 1));
  const roll = rng();
  if (roll < 0.3) return text.slice(0, at);
  if (roll < 0.5) return text.slice(0, at) + pick(rng, ['{', '}', '"', '\\', ',', '\u0000', '\ud800', ']', ':', 'NaN', 'Infinity']) + text.slice(at);
  if (roll < 0.6) return text.slice(0, at) + text.slice(at + 1 + Math.floor(rng() * 10));
  if (roll < 0.7) return `${text}${text}`;
  if (roll < 0.8) return pick(rng, ['', 'null', '[]', '"x"', '1', 'true', '{}', '[{}]']);
  if (roll < 0.9) return text.replace('{', '{"model":"m-vllm",'); // duplicate keys
  return `\ufeff${text}`;
}

const contentTypes = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/json; charset=latin1',
  'multipart/form-data; boundary=x',
];

/** One mutated request for a surface. */
export function mutateRequest(rng: Random, surface: FuzzSurface): { body: string; headers: Record<string, string> } {
  const request = structuredClone(pick(rng, surface.bases)) as Record<string, unknown>;
  const edits = 1 + Math.floor(rng() * 3);
  for (let index = 0; index < edits; index++) mutateStructure(rng, request, surface);
  let body = expandNesting(JSON.stringify(request));
  if (rng() < 0.2) body = damageBytes(rng, body);
  const headers: Record<string, string> = {};
  if (rng() < 0.08) headers['content-type'] = pick(rng, contentTypes);
  return { body, headers };
}
