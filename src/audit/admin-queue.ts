/**
 * Admin actions taken outside the gateway (`switchyard keys create|revoke`,
 * a separate process) reach the audit log through Redis: the command pushes
 * a record onto a list, and a gateway with the audit log on moves it into
 * its hash chain. One writer per chain stays true (the command never touches
 * the file), LPOP hands each record to exactly one replica, and a record
 * waits in Redis until some gateway takes it.
 */
import type { RedisClient } from '../redis/client.ts';
import type { AuditFields } from './record.ts';

/** Records waiting at most (oldest dropped past it): the list must not grow without bound while no gateway drains it. */
export const MAX_PENDING_ADMIN_RECORDS = 10_000;
const BATCH = 100;

export function adminQueueKey(prefix: string): string {
  return `${prefix}:audit:admin`;
}

/** What an out-of-process admin action records: who did what to which key. */
export interface AdminAction {
  action: 'key.create' | 'key.revoke';
  keyId: string;
  tenant?: string;
  detail?: string;
}

/** Queues an admin action for the gateways' audit logs (the keys command calls it). */
export async function queueAdminAction(redis: RedisClient, prefix: string, action: AdminAction, now = new Date()): Promise<void> {
  const fields: AuditFields = { time: now.toISOString(), type: 'admin', ...action };
  const key = adminQueueKey(prefix);
  await redis.multi().rpush(key, JSON.stringify(fields)).ltrim(key, -MAX_PENDING_ADMIN_RECORDS, -1).exec();
}

/** Only the fields an admin record may carry, of the right types: the list is input, not trusted structure. */
function adminFields(text: string): AuditFields | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const raw = parsed as Record<string, unknown>;
  if (typeof raw.time !== 'string' || typeof raw.action !== 'string') return undefined;
  const fields: AuditFields = { time: raw.time, type: 'admin', action: raw.action };
  if (typeof raw.keyId === 'string') fields.keyId = raw.keyId;
  if (typeof raw.tenant === 'string') fields.tenant = raw.tenant;
  if (typeof raw.detail === 'string') fields.detail = raw.detail;
  return fields;
}

/** Moves queued admin records into this gateway's audit log, every `intervalMs` and once more on stop. */
export class AdminQueueDrain {
  private readonly redis: RedisClient;
  private readonly key: string;
  private readonly write: (fields: AuditFields) => void;
  private readonly timer: NodeJS.Timeout;
  private running: Promise<void> | undefined;

  constructor(redis: RedisClient, prefix: string, write: (fields: AuditFields) => void, intervalMs: number, onError: (error: Error) => void) {
    this.redis = redis;
    this.key = adminQueueKey(prefix);
    this.write = write;
    this.timer = setInterval(() => {
      this.drain().catch(onError);
    }, intervalMs);
    this.timer.unref();
  }

  /** Takes what is queued now (one drain at a time). */
  drain(): Promise<void> {
    this.running ??= this.take().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async take(): Promise<void> {
    if (this.redis.status !== 'ready') return;
    for (;;) {
      const batch = await this.redis.lpop(this.key, BATCH);
      if (!batch || batch.length === 0) return;
      for (const text of batch) {
        const fields = adminFields(text);
        this.write(fields ?? { time: new Date().toISOString(), type: 'admin', action: 'invalid-queued-record' });
      }
      if (batch.length < BATCH) return;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.drain().catch(() => undefined);
  }
}
