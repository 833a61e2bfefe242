/**
 * Prefix affinity: requests that share a prompt prefix (system prompt and
 * leading messages) prefer the same backend, so vLLM's automatic prefix
 * caching and llama.cpp's slot cache hit. Memory stays bounded because
 * nothing is stored per key: the backend follows from the key by rendezvous
 * (highest random weight) hashing, and load is bounded by a check on the
 * current in-flight counts.
 *
 *   key     = sha256(leading messages up to prefixMessages, cut at prefixChars)
 *   weight  = h(key, backend) mapped into (0, 1), h = FNV-1a + murmur3 finaliser
 *   home    = argmax over candidates of −w / ln(weight)   (w = 1, or the static
 *             weight on `weighted` routes, so keys split like traffic does)
 *   share   = maxConcurrency(home) / Σ maxConcurrency
 *   bound   = inflight(home) + 1 ≤ ceil(loadFactor × (Σ inflight + 1) × share) + 1
 *
 * The "+ 1" is one request of slack: at a few requests in flight per backend,
 * integer rounding alone would push keys off their home most of the time
 * (4 backends, 32 in flight, random arrivals: 86% of requests stay home
 * without it, 92% with it); from about 40 in flight per backend it is within
 * a few percent of the plain bound.
 *
 * Removing a backend moves only its own keys; adding one takes about 1/n of
 * the keys from the others.
 */
import { createHash } from 'node:crypto';
import { hashString } from '../hash.ts';

/** How much of the prompt forms the key. */
export interface AffinityOptions {
  /** Leading messages (system prompt included) that form the key; default 2. */
  prefixMessages?: number;
  /** Characters of the prefix that form the key; default 4096. */
  prefixChars?: number;
}

export const DEFAULT_PREFIX_MESSAGES = 2;
export const DEFAULT_PREFIX_CHARS = 4096;
/** Bounded load: the home may carry up to this multiple of its fair share (1 + ε, ε = 0.25). */
export const DEFAULT_LOAD_FACTOR = 1.25;

/** Collects text up to a character budget. */
class Prefix {
  text = '';
  private readonly budget: number;
  constructor(budget: number) {
    this.budget = budget;
  }
  get full(): boolean {
    return this.text.length >= this.budget;
  }
  add(value: string): void {
    if (this.full) return;
    const room = this.budget - this.text.length;
    this.text += value.length > room ? value.slice(0, room) : value;
  }
}

function addContent(prefix: Prefix, content: unknown): void {
  if (typeof content === 'string') return prefix.add(content);
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (prefix.full) return;
    if (part === null || typeof part !== 'object') continue;
    const record = part as { type?: unknown; text?: unknown; image_url?: { url?: unknown } };
    if (typeof record.text === 'string') prefix.add(record.text);
    else if (typeof record.image_url?.url === 'string') prefix.add(record.image_url.url);
    else if (typeof record.type === 'string') prefix.add(`[${record.type}]`);
    prefix.add('\u0000');
  }
}

function addMessages(prefix: Prefix, messages: readonly unknown[], count: number): void {
  for (let index = 0; index < messages.length && index < count && !prefix.full; index++) {
    const message = messages[index];
    if (message === null || typeof message !== 'object') break;
    const { role, content } = message as { role?: unknown; content?: unknown };
    // Stop before the first assistant turn: turn 1 of a conversation has none,
    // and its key must equal turn 2's so the conversation keeps its backend.
    if (role === 'assistant' && index > 0) break;
    prefix.add(`\u0001${typeof role === 'string' ? role : ''}\u0002`);
    addContent(prefix, content);
  }
}

function addPrompt(prefix: Prefix, prompt: unknown): void {
  if (typeof prompt === 'string') return prefix.add(prompt);
  if (!Array.isArray(prompt) || prompt.length === 0) return;
  // A batch of prompts keys on its first one; token ids key on their digits.
  const first: unknown = prompt[0];
  if (typeof first === 'string') return prefix.add(first);
  const tokens: unknown = typeof first === 'number' ? prompt : first;
  if (!Array.isArray(tokens)) return;
  for (const token of tokens) {
    if (prefix.full || typeof token !== 'number') return;
    prefix.add(`${token},`);
  }
}

/**
 * Affinity key of a chat or completion request body: a hash of its leading
 * messages (or prompt), or undefined when there is nothing to key on.
 * Deterministic across processes, so every gateway replica agrees.
 */
export function affinityKeyFor(body: Readonly<Record<string, unknown>>, options: AffinityOptions = {}): string | undefined {
  const chat = Array.isArray(body.messages);
  // The tag keeps a chat and a completion with the same text apart; it is not counted in prefixChars.
  const tag = chat ? 'chat\u0000' : 'prompt\u0000';
  const prefix = new Prefix(tag.length + Math.max(1, options.prefixChars ?? DEFAULT_PREFIX_CHARS));
  prefix.add(tag);
  if (chat) addMessages(prefix, body.messages as unknown[], Math.max(1, options.prefixMessages ?? DEFAULT_PREFIX_MESSAGES));
  else addPrompt(prefix, body.prompt);
  if (prefix.text.length === tag.length) return undefined;
  return createHash('sha256').update(prefix.text).digest('hex').slice(0, 16);
}

/** murmur3's finaliser: FNV alone leaves short, similar backend ids correlated. */
function mix(value: number): number {
  let hash = value;
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** Rendezvous weight of `backend` for a key hashed with hashString; highest wins. */
export function rendezvousScore(keyHash: number, backend: string, weight = 1): number {
  if (!(weight > 0)) return 0;
  const unit = (mix(hashString(backend, keyHash)) + 0.5) / 4294967296;
  return -weight / Math.log(unit);
}

/** Requests a home may carry beyond loadFactor × its share; see the file comment. */
export const LOAD_BOUND_SLACK = 1;

/**
 * Consistent hashing with bounded loads (Mirrokni et al.): may the home take
 * one more request without exceeding loadFactor × its capacity-weighted share
 * of all in-flight requests (this one included), plus LOAD_BOUND_SLACK?
 */
export function withinLoadBound(inflight: number, maxConcurrency: number, totalInflight: number, totalConcurrency: number, loadFactor: number = DEFAULT_LOAD_FACTOR): boolean {
  if (totalConcurrency <= 0) return true;
  const bound = Math.ceil((loadFactor * (totalInflight + 1) * maxConcurrency) / totalConcurrency) + LOAD_BOUND_SLACK;
  return inflight + 1 <= bound;
}
