/**
 * Refuses request paths that are not in canonical form before anything is
 * served: percent-encoded letters, digits and other unreserved characters
 * (`/%761/...`: RFC 3986 says producers must not encode them, so only a client
 * probing for a bypass sends them), encoded or literal dot segments, double
 * and back slashes, malformed or control-character escapes. An encoded `/` is
 * allowed only where an id may hold one (`/v1/models/Qwen%2FQwen3-8B`, as the
 * openai SDK sends it). Authorisation never reads the URL (it follows the
 * matched route), so this is defence in depth and clearer errors, not the
 * gate itself.
 */

import type { FastifyError } from 'fastify';
import { gatewayError, type GatewayError } from '../errors.ts';

/** 400 invalid_path naming what made the path non-canonical. */
export function invalidPath(reason: string): GatewayError {
  return gatewayError('SWY_ERR_INVALID_PATH', {
    message: `The URL path is not in canonical form (it has ${reason}). Send it as documented, e.g. POST /v1/chat/completions.`,
  });
}

/** The router's own errors (raised before any hook runs) as catalogue errors. */
export function routerError(error: FastifyError): GatewayError | FastifyError {
  if (error.code === 'FST_ERR_BAD_URL') return invalidPath('a malformed percent-escape');
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return invalidPath('a path segment longer than the router accepts');
  return error;
}

const hex = /^[0-9A-Fa-f]{2}$/;
/** Path prefixes whose last segment is an id that may contain an encoded `/`. */
const idPrefixes = ['/v1/models/', '/models/', '/v1/responses/', '/responses/'];

/** Why the path (query excluded) is refused, or undefined when it is canonical. Fast for ordinary paths. */
export function nonCanonicalPath(url: string): string | undefined {
  // Ordinary paths have none of '%', '\\', '//', '/.' before the query: one scan, no allocation.
  let end = 0;
  let suspect = false;
  for (; end < url.length; end++) {
    const code = url.charCodeAt(end);
    if (code === 63) break; // '?'
    if (code === 37 || code === 92 || (code === 47 && (url.charCodeAt(end + 1) === 47 || url.charCodeAt(end + 1) === 46))) suspect = true;
  }
  if (!suspect) return undefined;
  const path = url.slice(0, end);
  if (path.indexOf('\\') >= 0) return 'a backslash';
  if (path.indexOf('//') >= 0) return 'an empty path segment (//)';
  const idPath = idPrefixes.some((prefix) => path.startsWith(prefix));
  let decoded = '';
  for (let index = 0; index < path.length; index++) {
    const char = path[index] as string;
    if (char !== '%') {
      decoded += char;
      continue;
    }
    const digits = path.slice(index + 1, index + 3);
    if (!hex.test(digits)) return 'a malformed percent-escape';
    const code = Number.parseInt(digits, 16);
    const character = String.fromCharCode(code);
    if (code < 0x20 || code === 0x7f) return 'an encoded control character';
    if (/[A-Za-z0-9\-._~]/.test(character)) return 'a percent-encoded letter, digit or other unreserved character';
    if (character === '\\') return 'an encoded backslash';
    if (character === '/' && !idPath) return 'an encoded slash (%2F)';
    decoded += character === '/' ? '\u0000' : character; // an encoded slash inside an id is not a separator
    index += 2;
  }
  for (const segment of decoded.split('/')) {
    if (segment === '.' || segment === '..') return 'a dot segment (. or ..)';
  }
  return undefined;
}
