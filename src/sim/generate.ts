// Deterministic "model": text, token counts, tool arguments and embeddings derived
// from a hash of the prompt and a seed, so the same request always gets the same
// answer and tests can assert on it. Everything here is cheap on purpose: it runs
// on every request of a benchmark.

import { hashString } from '../hash.ts';

export { hashString };

/** Mixes a number (seed, count) into a hash. */
export function hashNumber(hash: number, value: number): number {
  let mixed = (hash ^ (value | 0) ^ Math.floor(value / 4294967296)) >>> 0;
  mixed = Math.imul(mixed ^ (mixed >>> 16), 0x45d9f3b);
  mixed = Math.imul(mixed ^ (mixed >>> 16), 0x45d9f3b);
  return (mixed ^ (mixed >>> 16)) >>> 0;
}

/** mulberry32: tiny, fast and good enough for picking words and injecting failures. */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// One word is one token; a fixed vocabulary keeps output readable and stable.
const VOCABULARY: readonly string[] = (
  'the a of to and in is it that for on with as was at by be this from or an are ' +
  'model token gateway route backend stream request answer cache prompt value river ' +
  'mountain signal window garden engine quiet bright shadow little ancient golden ' +
  'harbor lantern meadow orbit pebble quartz summer thunder valley willow amber ' +
  'beacon canyon delta ember forest glacier horizon island jungle kernel lattice ' +
  'marble nebula ocean prairie ripple sierra tundra upland vortex wander yonder ' +
  'zephyr anchor bridge candle dune echo falcon grove harvest ivory jasper kettle ' +
  'ledger mosaic nectar olive parcel quiver raven saddle timber umbra velvet wharf ' +
  'compute schedule measure balance follow gather listen notice reason settle travel ' +
  'quickly slowly gently simply always often never again together perhaps'
).split(' ');

const REASONING_VOCABULARY: readonly string[] = (
  'first consider the question then check each step because so therefore maybe ' + 'wait actually let me think about what user wants answer should be clear'
).split(' ');

/** `count` tokens of text; every token but the first carries its leading space. */
export function generateTokens(seed: number, count: number, reasoning = false): string[] {
  const vocabulary = reasoning ? REASONING_VOCABULARY : VOCABULARY;
  const rng = createRng(seed);
  const tokens = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    const word = vocabulary[Math.floor(rng() * vocabulary.length)] ?? 'the';
    tokens[i] = i === 0 ? word : ` ${word}`;
  }
  return tokens;
}

/** Rough token estimate: about four characters per token, like most BPE vocabularies. */
export function estimateTextTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Per-message overhead of a chat template (role markers, separators). */
export const CHAT_MESSAGE_OVERHEAD = 4;
/** Tokens of the assistant turn header that every chat prompt ends with. */
export const CHAT_PROMPT_SUFFIX = 3;

/** Text of a chat message's content for hashing and counting; non-text parts count as a marker. */
export function messageText(message: unknown): string {
  if (typeof message !== 'object' || message === null) return '';
  const record = message as Record<string, unknown>;
  const role = typeof record.role === 'string' ? record.role : '';
  const content = record.content;
  let text = `${role}\n`;
  if (typeof content === 'string') {
    text += content;
  } else if (Array.isArray(content)) {
    for (const part of content) {
      if (typeof part === 'object' && part !== null) {
        const value = (part as Record<string, unknown>).text;
        // An image or audio part costs tokens too; 256 characters stand in for it.
        text += typeof value === 'string' ? value : ' '.repeat(256);
      }
    }
  }
  if (record.tool_calls !== undefined) text += JSON.stringify(record.tool_calls);
  return text;
}

/** JSON-schema-driven, deterministic tool arguments: strings are words, numbers small ints. */
export function generateToolArguments(parameters: unknown, seed: number): string {
  return JSON.stringify(sampleSchemaValue(isSchemaObject(parameters) ? parameters : { type: 'object' }, createRng(seed), 0));
}

/**
 * A JSON document for `response_format`: an instance of the schema (every property, so
 * required ones are there, with their types and enums), or `{"answer": "..."}` for
 * json_object without a schema.
 */
export function generateJsonDocument(schema: unknown, seed: number): string {
  const rng = createRng(seed);
  if (!isSchemaObject(schema)) return JSON.stringify({ answer: sentence(rng, 3) });
  return JSON.stringify(sampleSchemaValue(schema, rng, 0));
}

type Schema = Record<string, unknown>;

function isSchemaObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sentence(rng: () => number, words: number): string {
  const parts: string[] = [];
  for (let i = 0; i < words; i++) parts.push(VOCABULARY[Math.floor(rng() * VOCABULARY.length)] ?? 'value');
  return parts.join(' ');
}

/** The first type of a `type` that may be a list (["string", "null"]). */
function schemaType(schema: Schema): unknown {
  const type = schema.type;
  if (Array.isArray(type)) return type.find((item) => item !== 'null') ?? type[0];
  if (type === undefined && isSchemaObject(schema.properties)) return 'object';
  return type;
}

/** One value for a schema; deep or odd schemas bottom out in a word, never in an endless walk. */
function sampleSchemaValue(schema: unknown, rng: () => number, depth: number): unknown {
  const record = isSchemaObject(schema) ? schema : {};
  if (record.const !== undefined) return record.const;
  if (Array.isArray(record.enum) && record.enum.length > 0) {
    return record.enum[Math.floor(rng() * record.enum.length)];
  }
  const variants = record.anyOf ?? record.oneOf;
  if (Array.isArray(variants) && variants.length > 0) return sampleSchemaValue(variants[0], rng, depth + 1);
  switch (schemaType(record)) {
    case 'integer':
      return clampNumber(Math.floor(rng() * 100), record, true);
    case 'number':
      return clampNumber(Math.floor(rng() * 1000) / 10, record, false);
    case 'boolean':
      return rng() < 0.5;
    case 'null':
      return null;
    case 'array': {
      if (depth >= 4) return [];
      const count = Math.max(1, typeof record.minItems === 'number' ? record.minItems : 1);
      const items: unknown[] = [];
      for (let i = 0; i < Math.min(count, 4); i++) items.push(sampleSchemaValue(record.items, rng, depth + 1));
      return items;
    }
    case 'object': {
      const result: Record<string, unknown> = {};
      const properties = isSchemaObject(record.properties) ? record.properties : {};
      if (depth >= 4) return result;
      // Required properties first, then the others, at most eight in all.
      const required = Array.isArray(record.required) ? record.required.filter((name): name is string => typeof name === 'string') : [];
      const names = [...new Set([...required, ...Object.keys(properties)])].slice(0, Math.max(8, required.length));
      for (const name of names) result[name] = sampleSchemaValue(properties[name], rng, depth + 1);
      return result;
    }
    default: {
      const text = sentence(rng, 1 + Math.floor(rng() * 3));
      const max = typeof record.maxLength === 'number' ? record.maxLength : undefined;
      return max !== undefined ? text.slice(0, Math.max(max, 0)) : text;
    }
  }
}

function clampNumber(value: number, schema: Schema, integer: boolean): number {
  const min = typeof schema.minimum === 'number' ? schema.minimum : undefined;
  const max = typeof schema.maximum === 'number' ? schema.maximum : undefined;
  let result = value;
  if (min !== undefined && result < min) result = integer ? Math.ceil(min) : min;
  if (max !== undefined && result > max) result = integer ? Math.floor(max) : max;
  return result;
}

/** Splits tool arguments (or a JSON answer) into stream fragments the way parsers emit them: a few characters each. */
export function splitArguments(text: string, size = 8): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size));
  return pieces.length > 0 ? pieces : [''];
}

/** A unit-length vector (both runtimes normalise by default), rounded to float32. */
export function generateEmbedding(seed: number, dimensions: number): number[] {
  const rng = createRng(seed);
  const values = new Array<number>(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const value = rng() * 2 - 1;
    values[i] = value;
    norm += value * value;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dimensions; i++) values[i] = Math.fround((values[i] ?? 0) * scale);
  return values;
}

/** Base64 of little-endian float32s: what `encoding_format: "base64"` returns and the SDK decodes. */
export function embeddingToBase64(values: readonly number[]): string {
  const buffer = Buffer.allocUnsafe(values.length * 4);
  for (let i = 0; i < values.length; i++) buffer.writeFloatLE(values[i] ?? 0, i * 4);
  return buffer.toString('base64');
}

const ALPHANUMERIC = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random-looking ids without per-request crypto: a random prefix plus a counter. */
export class IdSource {
  private counter = 0;
  private readonly hexPrefix: string;
  private readonly alnumPrefix: string;

  constructor(seed: number) {
    const rng = createRng(hashNumber(Date.now() >>> 0, seed) ^ Math.floor(Math.random() * 4294967296));
    let hex = '';
    let alnum = '';
    for (let i = 0; i < 20; i++) {
      hex += Math.floor(rng() * 16).toString(16);
      alnum += ALPHANUMERIC[Math.floor(rng() * ALPHANUMERIC.length)] ?? '0';
    }
    this.hexPrefix = hex;
    this.alnumPrefix = alnum;
  }

  /** 32 lowercase hex characters, like Python's uuid4().hex. */
  hex(): string {
    this.counter++;
    return this.hexPrefix + this.counter.toString(16).padStart(12, '0');
  }

  /** 32 alphanumeric characters, like llama.cpp's random_string(). */
  alnum(): string {
    this.counter++;
    return this.alnumPrefix + this.counter.toString(36).padStart(12, '0');
  }
}

/** One alternative in a token's logprobs: text, a negative log probability and a token id. */
export interface TokenAlternative {
  id: number;
  token: string;
  logprob: number;
}

/**
 * The log probability of a generated token and its `top` alternatives, derived from the
 * token's text and position: the chosen token leads, alternatives follow less likely.
 */
export function tokenLogprobs(text: string, position: number, top: number, vocabularySize: number): { chosen: TokenAlternative; top: TokenAlternative[] } {
  const hash = hashNumber(hashString(text), position);
  const rng = createRng(hash);
  const chosen: TokenAlternative = { id: hashString(text) % vocabularySize, token: text, logprob: -rng() * 2 };
  const alternatives: TokenAlternative[] = [chosen];
  let logprob = chosen.logprob;
  for (let i = 1; i < top; i++) {
    const word = ` ${VOCABULARY[Math.floor(rng() * VOCABULARY.length)] ?? 'the'}`;
    logprob -= 0.5 + rng() * 2;
    alternatives.push({ id: hashString(word) % vocabularySize, token: word, logprob });
  }
  return { chosen, top: top > 0 ? alternatives : [] };
}

/** UTF-8 bytes of a token, as both runtimes list them. */
export function utf8Bytes(text: string): number[] {
  return [...Buffer.from(text, 'utf8')];
}
