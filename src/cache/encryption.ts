/**
 * Encryption at rest for cached values: AES-256-GCM, a random 12-byte IV per
 * value, the 16-byte tag authenticates it, and the Redis key is bound in as
 * additional authenticated data so a value cannot be moved to another key
 * (another tenant's) without failing to decrypt.
 * Layout: 0x01 | iv (12) | tag (16) | ciphertext.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const version = 0x01;
const ivBytes = 12;
const tagBytes = 16;

/** Decodes a 32-byte key written as 64 hex digits or base64 (standard or url-safe). */
export function parseEncryptionKey(text: string, source = 'cache.encryptionKey'): Buffer {
  const trimmed = text.trim();
  let key: Buffer;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) key = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) key = Buffer.from(trimmed, 'base64');
  else throw new Error(`${source}: not hex or base64; generate one with \`openssl rand -base64 32\``);
  if (key.length !== 32) {
    throw new Error(`${source}: the key is ${key.length} bytes, AES-256 needs 32; generate one with \`openssl rand -base64 32\``);
  }
  return key;
}

/**
 * The key from `encryptionKey` or `encryptionKeyFile` (a file may also hold
 * the 32 raw bytes); undefined when neither is set. Throws with the config
 * path when the key is unusable, so startup fails instead of storing plaintext.
 */
export function loadEncryptionKey(config: { encryptionKey?: string | undefined; encryptionKeyFile?: string | undefined }): Buffer | undefined {
  if (config.encryptionKey !== undefined && config.encryptionKeyFile !== undefined) {
    throw new Error('cache.encryptionKey and cache.encryptionKeyFile: set only one');
  }
  if (config.encryptionKey !== undefined) return parseEncryptionKey(config.encryptionKey);
  if (config.encryptionKeyFile === undefined) return undefined;
  let raw: Buffer;
  try {
    raw = readFileSync(config.encryptionKeyFile);
  } catch (error) {
    throw new Error(`cache.encryptionKeyFile: cannot read ${config.encryptionKeyFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (raw.length === 32) return Buffer.from(raw);
  return parseEncryptionKey(raw.toString('utf8'), 'cache.encryptionKeyFile');
}

/** Encrypts `plaintext`, binding it to `associated` (the store key). */
export function encryptValue(key: Buffer, plaintext: string, associated: string): Buffer {
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(associated));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.of(version), iv, cipher.getAuthTag(), ciphertext]);
}

/** Decrypts a value from `encryptValue`; undefined when it is not authentic. */
export function decryptValue(key: Buffer, value: Buffer, associated: string): string | undefined {
  if (value.length < 1 + ivBytes + tagBytes || value[0] !== version) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, value.subarray(1, 1 + ivBytes));
    decipher.setAAD(Buffer.from(associated));
    decipher.setAuthTag(value.subarray(1 + ivBytes, 1 + ivBytes + tagBytes));
    return Buffer.concat([decipher.update(value.subarray(1 + ivBytes + tagBytes)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
