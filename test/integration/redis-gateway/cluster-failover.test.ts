/**
 * Redis Cluster as an operator runs it: six real redis-server nodes, three
 * primaries and three replicas (`redis-cli --cluster create
 * --cluster-replicas 1`, node timeout 1 s). The gateways know two of the
 * nodes (`redis.cluster.nodes`) and discover the rest. Every Lua script and
 * multi-key operation must stay on one slot (hash tags), or the first test's
 * "no Redis errors" fails with CROSSSLOT. The primary holding the API keys is
 * SIGKILLed under traffic and its replica takes over. The scenario and what
 * it asserts: failover-suite.ts.
 */
import { Cluster } from 'ioredis';
import { redisKey } from '../../../src/redis/key.ts';
import { startCluster, type RedisProcess, type TestCluster } from '../../helpers/redis-ha.ts';
import { failoverSuite } from './failover-suite.ts';

failoverSuite('Cluster', async () => {
  const cluster: TestCluster = await startCluster();
  let killed: RedisProcess | undefined;
  const seeds = cluster.nodes.slice(0, 2).map(({ host, port }) => ({ host, port }));
  return {
    redis: { cluster: { nodes: seeds } },
    admin: () => new Cluster(seeds, { redisOptions: { maxRetriesPerRequest: 2 } }),
    // The primary of the API key hash: every key lookup goes to it.
    killPrimary: async (keyPrefix) => {
      const primary = await cluster.primaryFor(redisKey(keyPrefix, 'keys'));
      await primary.kill();
      killed = primary;
      return primary;
    },
    // The crashed node comes back (it rejoins as a replica of its successor), then the operator fails back to it.
    switchover: async (keyPrefix) => {
      if (killed) {
        await killed.restart();
        await cluster.waitForReplica(killed);
      }
      await cluster.switchover(redisKey(keyPrefix, 'keys'));
    },
    waitForFailover: (killed) => cluster.waitForFailover(killed as RedisProcess),
    // The client's slot table names the node the cluster says serves the key.
    onPrimary: async (client, keyPrefix) => {
      const key = redisKey(keyPrefix, 'keys');
      const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
      const [owner] = (client as Cluster).slots[slot] ?? [];
      const primary = await cluster.primaryFor(key);
      return owner === `${primary.host}:${primary.port}`;
    },
    stop: () => cluster.stop(),
  };
});
