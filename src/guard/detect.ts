/**
 * Local detection of personal data and secrets in request text: no external
 * service, no model. Each category is a linear-time regular expression (every
 * quantifier bounded or over a class the next token cannot start, so crafted
 * input cannot make it backtrack) plus, where a format has one, its checksum:
 * Luhn for payment cards, ISO 13616 mod-97 for IBANs, octet ranges for IPv4,
 * `net.isIPv6` for IPv6. High-entropy strings are tokens of 32+ characters
 * from the base64/URL alphabet with Shannon entropy >= 4.2 bits per character
 * that mix letters and digits: random keys and tokens pass, words, paths,
 * UUIDs and hex digests (at most 4 bits per character) do not.
 *
 * The scan runs over the request body as received (JSON text): whatever the
 * surface and wherever a value sits (any message, part, tool argument), it is
 * seen once, and a placeholder written over it keeps the JSON valid (see
 * redact.ts). Cheap pre-checks skip categories whose anchor character is
 * absent (`@` for e-mail, `-----BEGIN` for keys, a digit for numbers).
 */
import { isIPv6 } from 'node:net';

export const guardCategories = ['email', 'phone', 'card', 'iban', 'ip', 'private_key', 'jwt', 'api_key', 'high_entropy'] as const;
export type BuiltinCategory = (typeof guardCategories)[number];

/** One finding: its category (a built-in one or a custom pattern's name) and where it is. */
export interface Finding {
  category: string;
  start: number;
  end: number;
}

/** A configured pattern (`guard.patterns[]`). */
export interface CustomPattern {
  name: string;
  pattern: string;
  flags?: string | undefined;
}

interface Detector {
  category: string;
  /** Overlaps are settled in favour of the lower rank (the more specific category). */
  rank: number;
  regex: RegExp;
  /** Skip the regex when this returns false for the whole text. */
  worth?: (text: string) => boolean;
  valid?: (match: string) => boolean;
  /** The finding is capture group 1, at the end of the match. */
  group?: boolean;
}

function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let index = digits.length - 1; index >= 0; index--) {
    let digit = digits.charCodeAt(index) - 48;
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    double = !double;
  }
  return sum % 10 === 0;
}

function ibanValid(match: string): boolean {
  const compact = match.replace(/ /g, '');
  if (compact.length < 15 || compact.length > 34) return false;
  const moved = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (const char of moved) {
    const code = char.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48;
    remainder = value >= 10 ? (remainder * 100 + value) % 97 : (remainder * 10 + value) % 97;
  }
  return remainder === 1;
}

function entropy(text: string): number {
  const counts = new Map<number, number>();
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    counts.set(code, (counts.get(code) ?? 0) + 1);
  }
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

const hasDigit = (text: string) => /\d/.test(text);
/** Literal parts every API-key format starts with: a text without any of them skips the key regex. */
const keyPrefixes = ['sk-', 'AKIA', 'ASIA', 'ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_', 'xox', 'AIza', '_live_', 'hf_', 'Bearer '];
const octet = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';

const builtins: Record<BuiltinCategory | 'ipv6', Detector> = {
  private_key: {
    category: 'private_key',
    rank: 0,
    regex: /-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----|$)/g,
    worth: (text) => text.includes('PRIVATE KEY-----'),
  },
  jwt: { category: 'jwt', rank: 1, regex: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, worth: (text) => text.includes('eyJ') },
  api_key: {
    category: 'api_key',
    rank: 2,
    worth: (text) => keyPrefixes.some((prefix) => text.includes(prefix)),
    regex:
      /(?<![A-Za-z0-9_-])(?:sk-(?:proj-|ant-|swy-)?[A-Za-z0-9_-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[baprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|(?:sk|rk)_live_[0-9A-Za-z]{20,}|hf_[A-Za-z0-9]{30,})|(?<=Bearer )[A-Za-z0-9._~+/-]{20,}=*/g,
  },
  card: {
    category: 'card',
    rank: 3,
    regex: /(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.]?\d)/g,
    worth: hasDigit,
    valid: (match) => {
      const digits = match.replace(/[ -]/g, '');
      return digits.length >= 13 && digits.length <= 19 && luhn(digits);
    },
  },
  iban: {
    category: 'iban',
    rank: 4,
    regex: /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])/g,
    worth: hasDigit,
    valid: ibanValid,
  },
  email: { category: 'email', rank: 5, regex: /[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}/g, worth: (text) => text.includes('@') },
  ip: {
    category: 'ip',
    rank: 6,
    regex: new RegExp(`(?<![\\d.])${octet}(?:\\.${octet}){3}(?!\\.?\\d)`, 'g'),
    worth: (text) => /\d\.\d{1,3}\.\d/.test(text),
  },
  ipv6: {
    category: 'ip',
    rank: 6,
    regex: /(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){1,7}(?::|(?::?[0-9A-Fa-f]{1,4}){1,7})(?![0-9A-Fa-f:])/g,
    worth: (text) => /[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:/.test(text),
    valid: (match) => isIPv6(match) && hasDigit(match) && (match.includes('::') || match.split(':').length === 8),
  },
  phone: {
    category: 'phone',
    rank: 7,
    regex: /(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w])|(?<![\w(])(?:\(\d{3}\) ?|\d{3}[-.])\d{3}[-.]\d{4}(?!\w)/g,
    worth: hasDigit,
    valid: (match) => {
      const digits = match.replace(/\D/g, '').length;
      return match.startsWith('+') ? digits >= 8 && digits <= 15 : digits === 10;
    },
  },
  high_entropy: {
    category: 'high_entropy',
    rank: 8,
    regex: /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/=_-])/g,
    valid: (match) => match.length <= 4096 && /[A-Za-z]/.test(match) && hasDigit(match) && entropy(match) >= 4.2,
  },
};

/** The compiled detectors of the categories in use; built once at startup. */
export class GuardScanner {
  private readonly detectors: Detector[];

  constructor(categories: readonly string[], custom: readonly CustomPattern[] = []) {
    this.detectors = [];
    for (const category of categories) {
      const detector = builtins[category as BuiltinCategory];
      if (detector) this.detectors.push(detector);
      if (category === 'ip') this.detectors.push(builtins.ipv6);
    }
    for (const [index, pattern] of custom.entries()) {
      if (!categories.includes(pattern.name)) continue;
      let regex: RegExp;
      try {
        regex = new RegExp(pattern.pattern, `${(pattern.flags ?? '').replace(/[gy]/g, '')}g`);
      } catch (error) {
        throw new Error(`guard.patterns[${index}] (${pattern.name}): not a valid regular expression: ${(error as Error).message}`);
      }
      if (regex.test('')) throw new Error(`guard.patterns[${index}] (${pattern.name}): matches the empty string`);
      this.detectors.push({ category: pattern.name, rank: 9 + index, regex });
    }
  }

  /** Non-overlapping findings sorted by position (on overlap the more specific category wins, then the longer). */
  scan(text: string): Finding[] {
    const found: Array<Finding & { rank: number }> = [];
    for (const detector of this.detectors) {
      if (detector.worth && !detector.worth(text)) continue;
      const regex = detector.regex;
      regex.lastIndex = 0;
      for (let match = regex.exec(text); match !== null; match = regex.exec(text)) {
        const value = detector.group ? (match[1] as string) : match[0];
        if (match[0].length === 0) {
          regex.lastIndex++;
          continue;
        }
        if (detector.valid && !detector.valid(value)) continue;
        const end = match.index + match[0].length;
        found.push({ category: detector.category, start: end - value.length, end, rank: detector.rank });
      }
    }
    if (found.length <= 1) return found.map(({ category, start, end }) => ({ category, start, end }));
    found.sort((a, b) => a.rank - b.rank || b.end - b.start - (a.end - a.start));
    const kept: Finding[] = [];
    for (const candidate of found) {
      if (kept.some((finding) => candidate.start < finding.end && finding.start < candidate.end)) continue;
      kept.push({ category: candidate.category, start: candidate.start, end: candidate.end });
    }
    return kept.sort((a, b) => a.start - b.start);
  }
}
