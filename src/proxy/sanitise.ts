/**
 * What of an upstream error message a client may see. Runtimes and the proxies in front of them answer errors
 * with Python tracebacks, HTML error pages naming internal hosts, and sometimes echo the request headers, which
 * carry the gateway's own backend API key. The client gets the message's first meaningful part: no stack
 * frames, no markup, no internal URLs, host:port pairs, IP addresses or source paths, never a configured
 * secret, at most `maxMessageChars` characters. The original (secrets redacted, bounded) is kept for the
 * operator's debug log. Ordinary one-line runtime messages ("max_tokens must be at least 1", vLLM's validation
 * errors, llama.cpp's context-size message) pass unchanged.
 */

/** Longest message a client sees from an upstream error. */
export const maxMessageChars = 512;
/** Longest upstream detail kept for the debug log. */
export const maxDetailChars = 4096;

/** Secrets the gateway holds (backend API keys, admin token, ...): never shown to a client or logged. */
const secrets = new Set<string>();

/** Registers secrets to redact from upstream messages (called once per gateway with its configuration's). */
export function registerSecrets(values: Iterable<string | undefined>): void {
  for (const value of values) if (value !== undefined && value.length >= 8) secrets.add(value);
}

const bearer = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
const keyLike = /\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}/g;

/** The text with every registered secret and every bearer credential replaced by `[redacted]`. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  return out.replace(bearer, '$1 [redacted]').replace(keyLike, '[redacted]');
}

const traceback = /Traceback \(most recent call last\):/;
const exceptionLine = /^[\w.]+(?:Error|Exception|Exit|Interrupt|Warning)\b.*$/;
const stackFrame = /^\s*(?:at\s+\S.*(?:\(.*:\d+(?::\d+)?\)|:\d+:\d+)|File\s+"[^"]*",\s+line\s+\d+|#\d+\s+0x[0-9a-f]+|\.\.\.\s+\d+\s+more)\s*$/i;
const markup = /<\/?[a-z!][^>]*>/i;
const url = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>)]+/gi;
const ipv4 = /\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b/g;
const hostPort = /\b(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+):\d{2,5}\b/gi;
const sourcePath = /(?:[A-Za-z]:)?(?:[\\/][\w.@-]+){2,}\.(?:py|pyc|js|mjs|cjs|ts|go|rs|cpp|cc|c|h|hpp|java|rb|so)\b(?::\d+)?/g;

const entities: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&amp;': '&', '&quot;': '"', '&#39;': "'", '&nbsp;': ' ' };

/** Visible text of an HTML page: its <title> (or first heading), else the text without tags. */
function htmlText(text: string): string {
  const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(text)?.[1] ?? /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(text)?.[1];
  const visible = (title ?? text.replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ')).replace(/<[^>]*>/g, ' ');
  return visible
    .replace(/&(?:lt|gt|amp|quot|#39|nbsp);/g, (entity) => entities[entity] ?? ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** A client-safe version of an upstream error message; `fallback` when nothing useful is left. */
export function sanitiseMessage(message: string, fallback: string): string {
  let text = redactSecrets(message);
  if (markup.test(text) && /<(?:html|body|head|title|h1|div|p|pre|center|hr)\b/i.test(text)) text = htmlText(text);
  const trace = traceback.exec(text);
  if (trace) {
    // What came before the traceback, else its last line (the exception and its message).
    const before = text.slice(0, trace.index).trim();
    const raised = text
      .slice(trace.index)
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => exceptionLine.test(line));
    text = before !== '' ? before : (raised.at(-1) ?? '');
  }
  text = text
    .split('\n')
    .filter((line) => !stackFrame.test(line))
    .join('\n')
    .replace(url, '[url]')
    .replace(sourcePath, '[path]')
    .replace(hostPort, '[host]')
    .replace(ipv4, '[address]')
    .trim();
  if (text.length > maxMessageChars) text = `${text.slice(0, maxMessageChars - 1)}…`;
  return text === '' ? fallback : text;
}

/** The upstream body for the operator's debug log: secrets redacted, bounded. */
export function upstreamDetail(body: string): string {
  const text = redactSecrets(body.length > maxDetailChars * 2 ? body.slice(0, maxDetailChars * 2) : body);
  return text.length > maxDetailChars ? `${text.slice(0, maxDetailChars)}…` : text;
}
