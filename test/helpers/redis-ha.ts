/**
 * Redis as an operator runs it, for tests: a Sentinel group (one primary, two
 * replicas, three sentinels) and a six-node Cluster (three primaries, three
 * replicas), each made of private `redis-server` processes on free loopback
 * ports in a temp dir, without persistence. Failure detection is tuned short
 * (Sentinel `down-after-milliseconds`, `cluster-node-timeout`) so a killed
 * primary is replaced within a few seconds. `redis-sentinel` is not needed:
 * `redis-server <file> --sentinel` is the same program in Sentinel mode;
 * the Cluster is created with `redis-cli --cluster create`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';

/** One redis-server process (data node or sentinel). */
export interface RedisProcess {
  host: string;
  port: number;
  /** SIGKILL (a crash): no goodbye to clients, replicas or sentinels. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same arguments (after kill). */
  restart(): Promise<void>;
  readonly running: boolean;
}

export interface HostPort {
  host: string;
  port: number;
}

/** Distinct free ports (a port freed by one probe could otherwise come back from the next). */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`test redis: timed out after ${timeoutMs} ms waiting until ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/** A short-lived connection to one node for a few commands. */
async function withNode<T>(port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 500, commandTimeout: 1_000, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

function requireRedisServer(): void {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error('redis-server is not on PATH: run the tests with `npm test`, which installs the tools they need (bin/test-tools.js)');
  }
}

/** A process the helpers start and stop themselves. */
interface ManagedProcess extends RedisProcess {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Prepares `redis-server ...args` on `port`; start() runs it and waits until it answers PING. */
function launchProcess(port: number, args: string[]): ManagedProcess {
  let child: ChildProcess | undefined;
  let output = '';
  const start = async () => {
    output = '';
    const started = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    started.stdout?.on('data', (data: Buffer) => (output = (output + data.toString()).slice(-4_000)));
    started.stderr?.on('data', (data: Buffer) => (output = (output + data.toString()).slice(-4_000)));
    child = started;
    await waitUntil(
      async () => {
        if (started.exitCode !== null) throw new Error(`redis-server on ${port} exited: ${output.trim()}`);
        return (await withNode(port, (client) => client.ping())) === 'PONG';
      },
      5_000,
      `redis-server answers on ${port}`,
    ).catch((error: unknown) => {
      started.kill('SIGKILL');
      throw error;
    });
  };
  const handle: ManagedProcess = {
    host: '127.0.0.1',
    port,
    get running() {
      return child !== undefined;
    },
    start,
    kill: async () => {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.kill('SIGKILL');
      await exited;
    },
    restart: async () => {
      await handle.kill();
      await start();
    },
    stop: async () => {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.kill('SIGTERM');
      const timer = setTimeout(() => running.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return handle;
}

/** A data node's arguments. A replica's first sync starts at once (the default waits 5 s for more replicas to join it). */
const dataArgs = (port: number, directory: string) => [
  '--port',
  String(port),
  '--bind',
  '127.0.0.1',
  '--save',
  '',
  '--appendonly',
  'no',
  '--dir',
  directory,
  '--daemonize',
  'no',
  '--loglevel',
  'warning',
  '--repl-diskless-sync-delay',
  '0',
];

/** A Sentinel-managed group. */
export interface TestSentinelGroup {
  /** The master group name the sentinels monitor. */
  name: string;
  /** Where the sentinels listen (what the gateway's `redis.sentinels` lists). */
  sentinels: HostPort[];
  /** The three data nodes, in start order (the first is the initial primary). */
  nodes: RedisProcess[];
  /** The node the sentinels name as primary now. */
  primary(): Promise<RedisProcess>;
  /** The port of the node the sentinels name as primary now. */
  primaryPort(): Promise<number>;
  /** SIGKILLs the current primary; returns it. */
  killPrimary(): Promise<RedisProcess>;
  /** Waits until the sentinels name a primary other than `old` that answers as master; returns it. */
  waitForNewPrimary(old: RedisProcess, timeoutMs?: number): Promise<RedisProcess>;
  /**
   * A planned switchover (SENTINEL FAILOVER): a replica in sync is promoted; the old primary, still running, is
   * turned into its replica some seconds later (Sentinel's own pace) and takes writes until then. Retried while the
   * sentinels have no replica to promote yet; resolves once the sentinels name the promoted replica.
   */
  switchover(timeoutMs?: number): Promise<RedisProcess>;
  /** A client on the current primary through the sentinels (for setup and checks); disconnect it when done. */
  client(): Redis;
  stop(): Promise<void>;
}

/** Starts 1 primary, 2 replicas and 3 sentinels (quorum 2) and waits until the sentinels know each other and both replicas. */
export async function startSentinelGroup(options: { name?: string; downAfterMs?: number; failoverTimeoutMs?: number } = {}): Promise<TestSentinelGroup> {
  requireRedisServer();
  const name = options.name ?? 'switchyard';
  const downAfterMs = options.downAfterMs ?? 500;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 3_000;
  const directory = await mkdtemp(join(tmpdir(), 'swy-sentinel-'));
  const [primaryPort, replicaOne, replicaTwo, ...sentinelPorts] = (await freePorts(6)) as [number, number, number, number, number, number];
  const nodes: ManagedProcess[] = [];
  const sentinels: ManagedProcess[] = [];
  const stop = async () => {
    await Promise.all([...sentinels, ...nodes].map((node) => node.stop()));
    await rm(directory, { recursive: true, force: true });
  };
  try {
    for (const port of [primaryPort, replicaOne, replicaTwo]) {
      const args = dataArgs(port, directory);
      // Each node's own dbfilename: they share the directory.
      args.push('--dbfilename', `dump-${port}.rdb`);
      if (port !== primaryPort) args.push('--replicaof', '127.0.0.1', String(primaryPort));
      const node = launchProcess(port, args);
      nodes.push(node);
      await node.start();
    }
    for (const port of sentinelPorts) {
      // Sentinel rewrites its config file (known replicas, sentinels, epochs): one file each.
      const file = join(directory, `sentinel-${port}.conf`);
      await writeFile(
        file,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${directory}`,
          `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
          `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
          `sentinel parallel-syncs ${name} 2`,
          '',
        ].join('\n'),
      );
      const sentinel = launchProcess(port, [file, '--sentinel', '--loglevel', 'warning']);
      sentinels.push(sentinel);
      await sentinel.start();
    }
    // Replicas in sync, and every sentinel sees both replicas and the two other sentinels (hello messages, ~2 s).
    await waitUntil(
      async () => {
        for (const port of [replicaOne, replicaTwo]) {
          const info = await withNode(port, (client) => client.info('replication'));
          if (!info.includes('master_link_status:up')) return false;
        }
        for (const port of sentinelPorts) {
          const fields = await withNode(port, (client) => client.call('SENTINEL', 'MASTER', name) as Promise<string[]>);
          const map = Object.fromEntries(fields.flatMap((value, index) => (index % 2 === 0 ? [[value, fields[index + 1]]] : [])));
          if (map['num-slaves'] !== '2' || map['num-other-sentinels'] !== '2') return false;
        }
        return true;
      },
      15_000,
      'the sentinels know both replicas and each other',
    );
  } catch (error) {
    await stop();
    throw error;
  }

  const sentinelList = sentinelPorts.map((port) => ({ host: '127.0.0.1', port }));
  const primaryPortNow = async (): Promise<number> => {
    for (const port of sentinelPorts) {
      try {
        const [, port2] = await withNode(port, (client) => client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as Promise<[string, string]>);
        return Number(port2);
      } catch {
        // ask the next sentinel
      }
    }
    throw new Error('no sentinel answered');
  };
  const nodeOn = (port: number) => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`the sentinels name ${port}, which is not one of the group's nodes`);
    return node;
  };
  /** Waits until the sentinels name a primary other than `old` that says it is one. */
  const primaryOtherThan = async (old: RedisProcess, timeoutMs: number, what: string): Promise<RedisProcess> => {
    let found: RedisProcess | undefined;
    await waitUntil(
      async () => {
        const port = await primaryPortNow();
        if (port === old.port) return false;
        const role = await withNode(port, (client) => client.call('ROLE') as Promise<[string]>);
        if (role[0] !== 'master') return false;
        found = nodeOn(port);
        return true;
      },
      timeoutMs,
      what,
    );
    return found as RedisProcess;
  };
  return {
    name,
    sentinels: sentinelList,
    nodes,
    primary: async () => nodeOn(await primaryPortNow()),
    primaryPort: primaryPortNow,
    killPrimary: async () => {
      const primary = nodeOn(await primaryPortNow());
      await primary.kill();
      return primary;
    },
    waitForNewPrimary: (old, timeoutMs = 20_000) => primaryOtherThan(old, timeoutMs, `the sentinels promote a replica in place of ${old.port}`),
    switchover: async (timeoutMs = 20_000) => {
      const old = nodeOn(await primaryPortNow());
      // NOGOODSLAVE while no replica is in sync with the current primary (e.g. right after a failover).
      await waitUntil(
        async () => (await withNode(sentinelPorts[0] as number, (client) => client.call('SENTINEL', 'FAILOVER', name))) === 'OK',
        timeoutMs,
        'a sentinel accepts SENTINEL FAILOVER',
      );
      return primaryOtherThan(old, timeoutMs, `the sentinels switch the primary away from ${old.port}`);
    },
    client: () => new Redis({ sentinels: sentinelList, name, maxRetriesPerRequest: 2 }),
    stop,
  };
}

/** A six-node Cluster. */
export interface TestCluster {
  /** Every node (what the gateway's `redis.cluster.nodes` may list, or a few of them). */
  nodes: Array<RedisProcess>;
  /** The nodes that are primaries now. */
  primaries(): Promise<Array<RedisProcess>>;
  /** The primary that serves `key`'s slot now. */
  primaryFor(key: string): Promise<RedisProcess>;
  /** Waits until every live node says `cluster_state:ok` and no live primary lacks slots held by `old`. */
  waitForFailover(old: RedisProcess, timeoutMs?: number): Promise<void>;
  /** Waits until `node` (restarted after a kill, say) is a replica in sync with some primary. */
  waitForReplica(node: RedisProcess, timeoutMs?: number): Promise<void>;
  /**
   * A planned switchover (CLUSTER FAILOVER on a replica in sync): the replica of the primary serving `key` takes
   * over its slots, the old primary stays up as its replica. Resolves once every node agrees.
   */
  switchover(key: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** CLUSTER NODES, parsed: id, port, flags, slot ranges. */
interface ClusterNodeLine {
  id: string;
  port: number;
  /** The primary's id, for a replica. */
  primaryId: string;
  flags: string[];
  slots: Array<[number, number]>;
}

function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, primaryId, , , , , ...slots] = line.split(' ');
      const port = Number((address ?? '').split('@')[0]?.split(':')[1]);
      return {
        id: id ?? '',
        port,
        primaryId: primaryId ?? '-',
        flags: (flags ?? '').split(','),
        slots: slots
          .filter((slot) => !slot.startsWith('['))
          .map((slot) => {
            const [from, to] = slot.split('-').map(Number);
            return [from as number, (to ?? from) as number] as [number, number];
          }),
      };
    });
}

/** Starts six cluster-enabled nodes and joins them with `redis-cli --cluster create … --cluster-replicas 1`. */
export async function startCluster(options: { nodeTimeoutMs?: number } = {}): Promise<TestCluster> {
  requireRedisServer();
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1_000;
  const directory = await mkdtemp(join(tmpdir(), 'swy-cluster-'));
  // Data ports and bus ports given explicitly (cluster-port): the default bus port, data port + 10000, may not be free.
  const ports = await freePorts(12);
  const nodes: ManagedProcess[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await rm(directory, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < 6; index++) {
      const port = ports[index] as number;
      const args = [
        ...dataArgs(port, directory),
        '--dbfilename',
        `dump-${port}.rdb`,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-port',
        String(ports[index + 6]),
        '--cluster-node-timeout',
        String(nodeTimeoutMs),
        // A replica whose primary was down a while may still take over (the default factor 10 × node timeout is short here).
        '--cluster-replica-validity-factor',
        '0',
      ];
      const node = launchProcess(port, args);
      nodes.push(node);
    }
    await Promise.all(nodes.map((node) => node.start()));
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '1', '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (create.error || create.status !== 0) {
      throw new Error(`redis-cli --cluster create failed: ${create.error?.message ?? ''}${create.stdout ?? ''}${create.stderr ?? ''}`.trim());
    }
    await waitUntil(
      async () => {
        for (const node of nodes) {
          const info = await withNode(node.port, (client) => client.call('CLUSTER', 'INFO') as Promise<string>);
          if (!info.includes('cluster_state:ok') || !info.includes('cluster_known_nodes:6')) return false;
          const lines = parseClusterNodes(await withNode(node.port, (client) => client.call('CLUSTER', 'NODES') as Promise<string>));
          if (lines.filter((line) => line.flags.includes('slave')).length !== 3) return false;
          // A replica that has not finished its first sync would lose everything if its primary died now.
          const replication = await withNode(node.port, (client) => client.info('replication'));
          if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
        }
        return true;
      },
      20_000,
      'every node sees a healthy cluster of 3 primaries and 3 replicas in sync',
    );
  } catch (error) {
    await stop();
    throw error;
  }

  const liveNodes = () => nodes.filter((node) => node.running);
  const view = async (): Promise<ClusterNodeLine[]> => {
    for (const node of liveNodes()) {
      try {
        return parseClusterNodes(await withNode(node.port, (client) => client.call('CLUSTER', 'NODES') as Promise<string>));
      } catch {
        // ask the next node
      }
    }
    throw new Error('no cluster node answered');
  };
  const byPort = (port: number) => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`cluster node ${port} is not one of the test's nodes`);
    return node;
  };
  return {
    nodes,
    primaries: async () => (await view()).filter((line) => line.flags.includes('master') && !line.flags.includes('fail') && line.slots.length > 0).map((line) => byPort(line.port)),
    primaryFor: async (key) => {
      const slot = await withNode(liveNodes()[0]?.port ?? 0, (client) => client.call('CLUSTER', 'KEYSLOT', key) as Promise<number>);
      const owner = (await view()).find((line) => line.flags.includes('master') && line.slots.some(([from, to]) => slot >= from && slot <= to));
      if (!owner) throw new Error(`no primary serves slot ${slot}`);
      return byPort(owner.port);
    },
    waitForFailover: async (old, timeoutMs = 20_000) => {
      await waitUntil(
        async () => {
          for (const node of liveNodes()) {
            const info = await withNode(node.port, (client) => client.call('CLUSTER', 'INFO') as Promise<string>);
            if (!info.includes('cluster_state:ok')) return false;
            const lines = parseClusterNodes(await withNode(node.port, (client) => client.call('CLUSTER', 'NODES') as Promise<string>));
            if (lines.some((line) => line.port === old.port && line.slots.length > 0)) return false;
          }
          return true;
        },
        timeoutMs,
        `a replica takes over the slots of ${old.port} on every node`,
      );
    },
    waitForReplica: async (node, timeoutMs = 20_000) => {
      await waitUntil(
        async () => {
          const replication = await withNode(node.port, (client) => client.info('replication'));
          return replication.includes('role:slave') && replication.includes('master_link_status:up');
        },
        timeoutMs,
        `${node.port} replicates its primary`,
      );
    },
    switchover: async (key, timeoutMs = 20_000) => {
      const slot = await withNode(liveNodes()[0]?.port ?? 0, (client) => client.call('CLUSTER', 'KEYSLOT', key) as Promise<number>);
      // A node that just rejoined can still be flagged failed in the view asked until gossip catches up.
      let replica: ClusterNodeLine | undefined;
      let primary: ClusterNodeLine | undefined;
      await waitUntil(
        async () => {
          const lines = await view();
          primary = lines.find((line) => line.flags.includes('master') && line.slots.some(([from, to]) => slot >= from && slot <= to));
          replica = lines.find((line) => line.primaryId === primary?.id && !line.flags.includes('fail') && byPort(line.port).running);
          return replica !== undefined;
        },
        timeoutMs,
        `a live replica of the primary serving ${key} to switch over to`,
      );
      const target = replica;
      const from = primary;
      if (!target || !from) throw new Error(`no live replica of the primary serving ${key} to switch over to`);
      // A manual failover the replica cannot finish in time (it must first catch up with its primary, which is busy
      // under the test's traffic) is dropped by Redis after 5 s although the command said OK: ask again then.
      const askFailover = async () => {
        const answer = await withNode(target.port, (client) => client.call('CLUSTER', 'FAILOVER'));
        if (answer !== 'OK') throw new Error(`CLUSTER FAILOVER on ${target.port} answered ${String(answer)}`);
        return Date.now();
      };
      let asked = await askFailover();
      await waitUntil(
        async () => {
          if (Date.now() - asked > 6_000) asked = await askFailover();
          for (const node of liveNodes()) {
            const info = await withNode(node.port, (client) => client.call('CLUSTER', 'INFO') as Promise<string>);
            if (!info.includes('cluster_state:ok')) return false;
            const now = parseClusterNodes(await withNode(node.port, (client) => client.call('CLUSTER', 'NODES') as Promise<string>));
            const owner = now.find((line) => line.flags.includes('master') && line.slots.some(([from, to]) => slot >= from && slot <= to));
            if (owner?.port !== target.port) return false;
          }
          return true;
        },
        timeoutMs,
        `${target.port} takes over from ${from.port} on every node`,
      );
    },
    stop,
  };
}
