/** Redis health for `/readyz` detail: one PING with its own timeout. */
import type { RedisClient } from './client.ts';

/** Result of one probe; `error` never contains credentials. */
export interface RedisHealth {
  status: 'up' | 'down';
  latencyMs: number;
  error?: string;
}

/** PINGs Redis; `down` on error or when no PONG arrives within `timeoutMs`. */
export async function redisHealth(client: RedisClient, timeoutMs = 250): Promise<RedisHealth> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no PONG within ${timeoutMs} ms`)), timeoutMs);
  });
  const ping = client.ping();
  ping.catch(() => undefined);
  try {
    await Promise.race([ping, timeout]);
    return { status: 'up', latencyMs: round(performance.now() - started) };
  } catch (error) {
    return { status: 'down', latencyMs: round(performance.now() - started), error: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
