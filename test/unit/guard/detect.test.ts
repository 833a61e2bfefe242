import { describe, expect, it } from 'vitest';
import { guardCategories, GuardScanner } from '../../../src/guard/detect.ts';
import { redact } from '../../../src/guard/policy.ts';

const scanner = new GuardScanner(guardCategories);
const found = (text: string) => scanner.scan(text).map((finding) => [finding.category, text.slice(finding.start, finding.end)]);

describe('guard detection', () => {
  it.each([
    ['email', 'write to jane.doe+tag@example.co.uk today', 'jane.doe+tag@example.co.uk'],
    ['phone', 'call +44 20 7946 0958 now', '+44 20 7946 0958'],
    ['phone', 'or (555) 123-4567 at home', '(555) 123-4567'],
    ['phone', 'office 555-123-4567.', '555-123-4567'],
    ['card', 'card 4111 1111 1111 1111 exp', '4111 1111 1111 1111'],
    ['card', 'amex 378282246310005', '378282246310005'],
    ['iban', 'pay GB82 WEST 1234 5698 7654 32 please', 'GB82 WEST 1234 5698 7654 32'],
    ['iban', 'to DE89370400440532013000.', 'DE89370400440532013000'],
    ['ip', 'host 10.20.30.40 is down', '10.20.30.40'],
    ['ip', 'v6 2001:db8::8a2e:370:7334 up', '2001:db8::8a2e:370:7334'],
    [
      'jwt',
      'token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
    ],
    ['api_key', 'key sk-proj-abcdefghijklmnopqrstuvwx1234 here', 'sk-proj-abcdefghijklmnopqrstuvwx1234'],
    ['api_key', 'aws AKIAIOSFODNN7EXAMPLE', 'AKIAIOSFODNN7EXAMPLE'],
    ['api_key', 'gh ghp_abcdefghijklmnopqrstuvwxyz0123456789', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'],
    ['api_key', 'Authorization: Bearer abcdEFGH1234ijklMNOP5678', 'abcdEFGH1234ijklMNOP5678'],
    ['high_entropy', 'secret=Zx8q2LmP0vN7rT4wK9sB3yH6dF1gJ5cA end', 'Zx8q2LmP0vN7rT4wK9sB3yH6dF1gJ5cA'],
  ])('finds %s in %j', (category, text, value) => {
    expect(found(text)).toEqual([[category, value]]);
  });

  it('finds a private key block, to its END line or the end of the text', () => {
    const block = '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----';
    expect(found(`key:\n${block}\nthanks`)).toEqual([['private_key', block]]);
    expect(found('-----BEGIN PRIVATE KEY-----\nMIIE')).toEqual([['private_key', '-----BEGIN PRIVATE KEY-----\nMIIE']]);
  });

  it('refuses what fails the checksum', () => {
    expect(found('card 4111 1111 1111 1112')).toEqual([]);
    expect(found('iban GB83 WEST 1234 5698 7654 32')).toEqual([]);
    expect(found('ip 256.1.1.1')).toEqual([]);
  });

  it('finds nothing in ordinary prose, code, ids, dates, versions and numbers', () => {
    const clean = [
      'The meeting is on 2024-01-15 at 12:30:45, version 1.2.3 of the app, build 20240115.',
      'Order 1234567 cost $1,299.99; we shipped 42 units to Paris.',
      'const id = "3f2a9c4e-8b7d-4e1f-9a6b-2c5d8e7f1a3b"; // a UUID',
      'git checkout 9fceb02d0ae598e95dc970b74767f19372d61af8 && npm test',
      'See https://example.com/docs/getting-started/installation-guide-for-linux and /usr/local/lib/node_modules/openai/index.js',
      'std::vector<int> v; for (auto& x : v) x::y;',
      'A long word: Pneumonoultramicroscopicsilicovolcanoconiosis appears in dictionaries.',
      'base64 of hi: aGk=, of hello: aGVsbG8=',
      'Call me at extension 4521 or room 101.',
    ].join('\n');
    expect(found(clean)).toEqual([]);
  });

  it('keeps the more specific category on overlap (an API key is not also high entropy)', () => {
    expect(found('sk-ant-api03-Zx8q2LmP0vN7rT4wK9sB3yH6dF1gJ5cA')).toEqual([['api_key', 'sk-ant-api03-Zx8q2LmP0vN7rT4wK9sB3yH6dF1gJ5cA']]);
  });

  it('compiles custom patterns, refusing invalid ones and ones that match the empty string', () => {
    const custom = new GuardScanner(['employee_id'], [{ name: 'employee_id', pattern: 'EMP-\\d{6}' }]);
    expect(custom.scan('by EMP-123456 today').map((finding) => finding.category)).toEqual(['employee_id']);
    expect(() => new GuardScanner(['bad'], [{ name: 'bad', pattern: '(' }])).toThrow(/bad.*not a valid regular expression/);
    expect(() => new GuardScanner(['empty'], [{ name: 'empty', pattern: 'x*' }])).toThrow(/matches the empty string/);
  });

  it('stays linear on hostile input (no catastrophic backtracking)', () => {
    const inputs = [
      'a@'.repeat(50_000),
      '1'.repeat(100_000),
      'eyJ'.repeat(30_000),
      `-----BEGIN PRIVATE KEY-----${'A'.repeat(100_000)}`,
      '+1 '.repeat(30_000),
      'ab:'.repeat(30_000),
      '1.'.repeat(50_000),
      '1:'.repeat(50_000),
      '1-'.repeat(50_000),
    ];
    const started = performance.now();
    for (const input of inputs) scanner.scan(input);
    expect(performance.now() - started).toBeLessThan(5_000); // a no-hang bound, not a speed test (bench/ measures that)
  });
});

describe('redaction', () => {
  it('writes typed placeholders, the same value getting the same one, and keeps JSON valid across escapes', () => {
    const raw = JSON.stringify({ messages: [{ role: 'user', content: 'mail a@b.io\nand\na@b.io or c@d.io, card 4111111111111111' }] });
    const findings = scanner.scan(raw);
    const out = redact(raw, findings);
    const content = (JSON.parse(out) as { messages: Array<{ content: string }> }).messages[0]?.content;
    expect(content).toBe('mail [EMAIL_1]\nand\n[EMAIL_1] or [EMAIL_2], card [CARD_1]');
  });
});

describe('streamed restoration', () => {
  it('restores a placeholder split at every position across two and three pieces, and holds nothing else back', async () => {
    const { PlaceholderRestorer } = await import('../../../src/guard/stream-guard.ts');
    const values = new Map([['[EMAIL_1]', 'jane@example.com']]);
    const text = 'Write to [EMAIL_1] today, not [EMAIL_9] or [x].';
    const expected = 'Write to jane@example.com today, not [EMAIL_9] or [x].';
    for (let first = 1; first < text.length; first++) {
      for (const second of [first, Math.min(text.length, first + 3)]) {
        const restorer = new PlaceholderRestorer(values);
        const out = restorer.push(text.slice(0, first)) + restorer.push(text.slice(first, second)) + restorer.push(text.slice(second)) + restorer.end();
        expect(out).toBe(expected);
      }
    }
    const eager = new PlaceholderRestorer(values);
    expect(eager.push('plain text, released at once')).toBe('plain text, released at once');
    expect(eager.push('a [b] c')).toBe('a [b] c');
  });
});
