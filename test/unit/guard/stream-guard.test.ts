import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.ts';
import { Guard } from '../../../src/guard/policy.ts';
import { SecretScrubber } from '../../../src/guard/stream-guard.ts';

const guard = Guard.create(
  validateConfig(
    {
      backends: [{ id: 'a', kind: 'vllm', url: 'http://127.0.0.1:1' }],
      models: [{ name: 'm', targets: [{ backend: 'a', model: 'x' }] }],
      guard: { enabled: true, output: 'redact' },
    },
    'test',
    {},
  ),
) as Guard;
const scan = (text: string) => guard.scanAnswer(text)?.json ?? text;
const key = 'sk-proj-Zx8q2LmP0vN7rT4wK9sB3yH6dF1gJ5cA';
const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----';
const text = `Use ${key} or the token ${jwt}.\nHere is the key:\n${pem}\nand AKIAIOSFODNN7EXAMPLE done.`;

function streamed(pieces: string[]): string {
  const scrubber = new SecretScrubber(scan);
  return pieces.map((piece) => scrubber.push(piece)).join('') + scrubber.end();
}

describe('SecretScrubber', () => {
  it('replaces secrets split at every position across two pieces exactly as a scan of the whole text does', () => {
    const whole = scan(text);
    expect(whole).not.toContain(key.slice(8));
    expect(whole).not.toContain('MIIEvQ');
    expect(whole).not.toContain('AKIAIOSFODNN7EXAMPLE');
    for (let cut = 1; cut < text.length; cut++) expect(streamed([text.slice(0, cut), text.slice(cut)])).toBe(whole);
  });

  it('does the same token by token (pieces of 1 to 7 characters)', () => {
    const whole = scan(text);
    for (const size of [1, 2, 3, 5, 7]) {
      const pieces: string[] = [];
      for (let at = 0; at < text.length; at += size) pieces.push(text.slice(at, at + size));
      expect(streamed(pieces)).toBe(whole);
    }
  });

  it('holds back only the unfinished word: plain text goes out as soon as a space ends it', () => {
    const scrubber = new SecretScrubber(scan);
    expect(scrubber.push('Hello there, wor')).toBe('Hello there, ');
    expect(scrubber.push('ld! ')).toBe('world! ');
    expect(scrubber.end()).toBe('');
  });

  it('bounds what it holds: a private-key block that never ends is replaced whole once past 64 KiB', () => {
    const scrubber = new SecretScrubber(scan);
    let out = scrubber.push('before -----BEGIN PRIVATE KEY-----\n');
    for (let index = 0; index < 70; index++) out += scrubber.push(`${'A'.repeat(1023)}\n`);
    out += scrubber.end();
    expect(out).toContain('before ');
    expect(out).toContain('[PRIVATE_KEY_REDACTED]');
    expect(out).not.toContain('AAAA');
  });
});
