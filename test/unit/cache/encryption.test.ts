import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decryptValue, encryptValue, loadEncryptionKey, parseEncryptionKey } from '../../../src/cache/encryption.ts';

describe('cache encryption', () => {
  const key = randomBytes(32);

  it('round-trips with a fresh IV per value and no plaintext in the ciphertext', () => {
    const one = encryptValue(key, 'the secret answer', 'k1');
    const two = encryptValue(key, 'the secret answer', 'k1');
    expect(one.equals(two)).toBe(false);
    expect(one.toString('latin1')).not.toContain('secret');
    expect(decryptValue(key, one, 'k1')).toBe('the secret answer');
  });

  it('rejects tampering, the wrong key and a value moved to another key', () => {
    const value = encryptValue(key, 'answer', 'k1');
    const tampered = Buffer.from(value);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    expect(decryptValue(key, tampered, 'k1')).toBeUndefined();
    expect(decryptValue(randomBytes(32), value, 'k1')).toBeUndefined();
    expect(decryptValue(key, value, 'k2')).toBeUndefined();
    expect(decryptValue(key, Buffer.from('{"v":1}'), 'k1')).toBeUndefined();
  });

  it('reads keys as hex, base64 or a raw 32-byte file and refuses other lengths', () => {
    expect(parseEncryptionKey(key.toString('hex')).equals(key)).toBe(true);
    expect(parseEncryptionKey(key.toString('base64')).equals(key)).toBe(true);
    expect(parseEncryptionKey(` ${key.toString('base64url')}\n`).equals(key)).toBe(true);
    expect(() => parseEncryptionKey(randomBytes(16).toString('base64'))).toThrow(/16 bytes, AES-256 needs 32/);
    const directory = mkdtempSync(join(tmpdir(), 'swy-key-'));
    writeFileSync(join(directory, 'raw'), key);
    writeFileSync(join(directory, 'b64'), `${key.toString('base64')}\n`);
    expect(loadEncryptionKey({ encryptionKeyFile: join(directory, 'raw') })?.equals(key)).toBe(true);
    expect(loadEncryptionKey({ encryptionKeyFile: join(directory, 'b64') })?.equals(key)).toBe(true);
    expect(loadEncryptionKey({})).toBeUndefined();
    expect(() => loadEncryptionKey({ encryptionKeyFile: join(directory, 'missing') })).toThrow(/cannot read/);
    expect(() => loadEncryptionKey({ encryptionKey: 'a', encryptionKeyFile: 'b' })).toThrow(/only one/);
    rmSync(directory, { recursive: true, force: true });
  });
});
