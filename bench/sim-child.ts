/**
 * The benchmark's upstream: one simulator in its own process (the bench pins it
 * to the load generator's CPU). Imports the simulator module directly, so it does
 * not depend on the gateway's CLI being importable.
 *
 *   node bench/sim-child.ts [--port 0] [--max-concurrency 1024] [--flavor vllm] [--model sim-model] [--stats-port N]
 *
 * Prints `sim listening on http://HOST:PORT`. ttft 0 and no token pacing: the
 * upstream should be as cheap as possible so it is not the bottleneck.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { startSimulator } from '../src/sim/simulator.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    flavor: { type: 'string', default: 'vllm' },
    model: { type: 'string', default: 'sim-model' },
    'max-concurrency': { type: 'string', default: '1024' },
    'stats-port': { type: 'string' },
  },
});

const flavor = values.flavor === 'llamacpp' ? 'llamacpp' : 'vllm';
const simulator = await startSimulator({
  flavor,
  model: values.model,
  host: values.host,
  port: Number(values.port),
  ttftMs: 0,
  tokensPerSecond: 0,
  maxConcurrency: Number(values['max-concurrency']),
});
// Counters on a separate port (so they never mix with the simulated API): the
// bench reads them around every cell to count upstream calls per request.
if (values['stats-port'] !== undefined) {
  const stats = createServer((_request, response) => {
    const { lastRequest: _last, ...counters } = simulator.stats();
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(counters));
  });
  await new Promise<void>((resolve) => stats.listen(Number(values['stats-port']), values.host, resolve));
}
console.log(`sim listening on ${simulator.url}`);

const stop = () => {
  simulator.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
