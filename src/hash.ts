/**
 * FNV-1a (32-bit) over UTF-16 code units: a fast, deterministic string hash that every process computes the same
 * way. Prefix affinity keys backends with it (gateway replicas must agree) and the simulator derives its answers
 * from it (the same prompt always gets the same answer). Not for anything an attacker should not predict.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a of `text`, continuing from `seed` so hashes can be chained: hashString('ab') === hashString('b', hashString('a')). */
export function hashString(text: string, seed: number = FNV_OFFSET): number {
  let hash = seed >>> 0;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}
