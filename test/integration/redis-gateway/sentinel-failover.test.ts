/**
 * Redis Sentinel as an operator runs it: one primary, two replicas, three
 * sentinels (quorum 2, down-after 500 ms), each a real redis-server. The
 * gateways find the primary through the sentinels (`redis.sentinels` +
 * `redis.name`); the primary is SIGKILLed under traffic and the sentinels
 * promote a replica. The scenario and what it asserts: failover-suite.ts.
 */
import { Redis } from 'ioredis';
import { startSentinelGroup, type RedisProcess } from '../../helpers/redis-ha.ts';
import { failoverSuite } from './failover-suite.ts';

failoverSuite('Sentinel', async () => {
  const group = await startSentinelGroup({ name: 'switchyard-test' });
  return {
    redis: { sentinels: group.sentinels, name: group.name },
    admin: () => new Redis({ sentinels: group.sentinels, name: group.name, maxRetriesPerRequest: 2 }),
    killPrimary: () => group.killPrimary(),
    waitForFailover: async (killed) => {
      await group.waitForNewPrimary(killed as RedisProcess);
    },
    switchover: async () => {
      await group.switchover();
    },
    // The node a client is connected to says its own port.
    onPrimary: async (client) => {
      const info = await (client as Redis).info('server');
      return Number(/tcp_port:(\d+)/.exec(info)?.[1]) === (await group.primaryPort());
    },
    stop: () => group.stop(),
  };
});
