import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, connectRedis, createRedis } from '../../../src/redis/client.ts';
import { RedisConfigSchema } from '../../../src/redis/config.ts';
import { redisHealth } from '../../../src/redis/health.ts';
import { Value } from '@sinclair/typebox/value';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';

const logger = pino({ level: 'silent' });

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256: fast). */
function makeCertificates(directory: string): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string } {
  const path = (name: string) => join(directory, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', path('ca.key'), '-out', path('ca.pem'), '-days', '1', '-subj', '/CN=switchyard-test-ca');
  writeFileSync(path('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const name of ['server', 'client']) {
    openssl('req', ...ec, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`), '-subj', `/CN=${name}`);
    const extension = name === 'server' ? ['-extfile', path('server.ext')] : [];
    openssl(
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path('ca.pem'),
      '-CAkey',
      path('ca.key'),
      '-CAcreateserial',
      '-out',
      path(`${name}.pem`),
      '-days',
      '1',
      ...extension,
    );
  }
  return { ca: path('ca.pem'), serverCert: path('server.pem'), serverKey: path('server.key'), clientCert: path('client.pem'), clientKey: path('client.key') };
}

describe('redis over TLS (rediss:// with a private CA and client certificates)', () => {
  let directory: string;
  let server: TestRedis;
  let files: ReturnType<typeof makeCertificates>;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'swy-tls-'));
    files = makeCertificates(directory);
    server = await startRedis({ tls: { certFile: files.serverCert, keyFile: files.serverKey, caFile: files.ca, authClients: true } });
  });
  afterAll(async () => {
    await server.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('connects with caFile, certFile and keyFile from the config', async () => {
    const config = Value.Default(RedisConfigSchema, { url: server.tlsUrl, tls: { caFile: files.ca, certFile: files.clientCert, keyFile: files.clientKey } });
    expect(Value.Check(RedisConfigSchema, config)).toBe(true);
    const redis = createRedis(Value.Decode(RedisConfigSchema, config), logger);
    expect(await connectRedis(redis, 3_000)).toBe(true);
    expect((await redisHealth(redis)).status).toBe('up');
    await closeRedis(redis);
  });

  it('fails (without throwing from connectRedis) when the CA is not trusted', async () => {
    const config = Value.Decode(RedisConfigSchema, Value.Default(RedisConfigSchema, { url: server.tlsUrl, tls: { certFile: files.clientCert, keyFile: files.clientKey } }));
    const redis = createRedis(config, logger);
    expect(await connectRedis(redis, 500)).toBe(false);
    expect((await redisHealth(redis, 100)).status).toBe('down');
    await closeRedis(redis);
  });

  it('rejects configs that mix up modes', () => {
    expect(() => createRedis(Value.Decode(RedisConfigSchema, Value.Default(RedisConfigSchema, {})), logger)).toThrow(/redis.url/);
    expect(() => createRedis(Value.Decode(RedisConfigSchema, Value.Default(RedisConfigSchema, { sentinels: [{ host: 'h', port: 26379 }] })), logger)).toThrow(/redis.name/);
    expect(Value.Check(RedisConfigSchema, Value.Default(RedisConfigSchema, { url: 'http://x' }))).toBe(false);
    expect(Value.Check(RedisConfigSchema, Value.Default(RedisConfigSchema, { url: 'redis://x', unknown: 1 }))).toBe(false);
  });
});
