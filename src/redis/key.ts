/**
 * THE one builder of Redis keys: `prefix:part:part…`. Parts are
 * percent-encoded so a tenant or key id can never contain the separator or
 * the `{…}` of a Cluster hash tag. Wrap a part in `hashTag()` to make every
 * key that shares it land on one Cluster slot (needed by multi-key Lua).
 */

/** A key part that becomes a Cluster hash tag: `{value}`. */
export interface HashTag {
  readonly hashTag: string;
}

/** Marks a part as the Cluster hash tag of the key. */
export function hashTag(value: string): HashTag {
  return { hashTag: value };
}

function encodePart(part: string | number | HashTag): string {
  if (typeof part === 'number') return String(part);
  if (typeof part === 'string') return encodeURIComponent(part);
  return `{${encodeURIComponent(part.hashTag)}}`;
}

/** Builds `prefix:part:part…`; an empty prefix leaves the leading part first. */
export function redisKey(prefix: string, ...parts: Array<string | number | HashTag>): string {
  const encoded = parts.map(encodePart).join(':');
  return prefix ? `${prefix}:${encoded}` : encoded;
}
