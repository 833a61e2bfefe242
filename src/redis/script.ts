/**
 * Lua scripts run by SHA (EVALSHA), loaded on first use or after a NOSCRIPT
 * (a restarted Redis, another Cluster node). Every key a script touches is
 * passed in KEYS, so scripts work on a Cluster when the keys share a hash tag.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from './client.ts';

/** A Lua script and its SHA1. */
export class LuaScript {
  readonly source: string;
  readonly sha: string;

  constructor(source: string) {
    this.source = source;
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script; falls back to EVAL when the server does not know it yet. */
  async run(client: RedisClient, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
