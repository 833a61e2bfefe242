#!/usr/bin/env node
/**
 * The `switchyard` command: serve | demo | sim | config check.
 * The only place that writes to the console directly (everything else logs through pino).
 */
import cluster from 'node:cluster';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from './config/load.ts';
import { startDemo } from './demo.ts';
import { exitOnSignals, reloadOnSighup, startGateway } from './server.ts';
import { keysUsage, runKeysCommand } from './limits/keys-command.ts';
import { runAuditCommand } from './audit/command.ts';
import { parseSimArgs, simUsage } from './sim/cli.ts';
import { startSimulator } from './sim/simulator.ts';
import { Registry as PromRegistry } from 'prom-client';
import { announceListening, perWorkerStateWarning, runPrimary, workerConfig, workerCount, workerId, workerMetrics, workerReloads, workersConfigError } from './workers.ts';
import type { SwitchyardConfig } from './config/schema.ts';
import { createLogger } from './logging.ts';

const usage = `Usage: switchyard <command> [options]

Commands:
  serve [--config FILE] [--port N] [--host H]
                          run the gateway (config: --config, else $SWITCHYARD_CONFIG, else config/switchyard.yaml)
  demo [--port N]         run the gateway with two simulated backends (no GPU, no Redis)
  sim [flags]             run a backend simulator (vLLM, llama.cpp or SGLang flavour); see \`switchyard sim --help\`
  config check FILE       validate a config file and exit (0 valid, 1 invalid)
  keys create|list|revoke|hash
                          manage API keys (see \`switchyard keys\`)
  audit verify FILE...    check the audit log's hash chain (see \`switchyard audit\`)
  help                    show this text`;

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/**
 * A command's flags: `--help` prints `help` and exits 0; an unknown or malformed flag is one line naming it and
 * the usage, exit 1 (never a stack trace).
 */
function flagsOf(argv: string[], options: FlagSpec, help: string): Record<string, string | boolean | undefined> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (error) {
    fail(`${(error as Error).message}\n\n${help}`);
  }
  if (values.help === true) {
    console.log(help);
    process.exit(0);
  }
  return values;
}

/** A --port value: an integer from 0 to 65535 (0: any free port). */
function portOf(value: string, help: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) fail(`--port must be an integer from 0 to 65535 (got "${value.slice(0, 40)}").\n\n${help}`);
  return port;
}

const serveUsage = `Usage: switchyard serve [--config FILE] [--port N] [--host H]

Runs the gateway. The config file is --config, else $SWITCHYARD_CONFIG, else config/switchyard.yaml
(every option: config/switchyard.example.yaml); --port and --host override server.port and server.host.`;

const demoUsage = `Usage: switchyard demo [--port N]

Runs the gateway with two simulated backends (vLLM and llama.cpp flavours) on embedded defaults: no GPU, no Redis.`;

function loadOrExit(file: string) {
  try {
    return loadConfigFile(file);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
}

async function serve(argv: string[]): Promise<void> {
  const values = flagsOf(argv, { config: { type: 'string', short: 'c' }, port: { type: 'string' }, host: { type: 'string' } }, serveUsage) as {
    config?: string;
    port?: string;
    host?: string;
  };
  const file = resolve(values.config ?? process.env.SWITCHYARD_CONFIG ?? 'config/switchyard.yaml');
  const config = loadOrExit(file);
  const listen = {
    configFile: file,
    ...(values.port ? { port: portOf(values.port, serveUsage) } : {}),
    ...(values.host ? { host: values.host } : {}),
  };
  const workers = workerCount(config.server.workers);
  if (cluster.isPrimary && workers > 1) {
    // The primary forks the workers (each runs this same command and lands below) and serves nothing itself.
    const problem = workersConfigError(config, listen.port ?? config.server.port);
    if (problem) fail(problem);
    const logger = createLogger(config).child({ role: 'primary' });
    const warning = perWorkerStateWarning(config, workers);
    if (warning) logger.warn(warning);
    logger.info({ config: file, workers }, 'starting workers');
    await runPrimary(config, logger, workers, file).catch(() => {
      // runPrimary logged why and exits 1
    });
    return;
  }
  const id = workerId();
  if (id === undefined) {
    const gateway = await startGateway(config, listen);
    gateway.logger.info({ url: gateway.url, config: file }, 'switchyard listening');
    exitOnSignals(gateway);
    reloadOnSighup(gateway);
    return;
  }
  // A cluster worker: its log lines say which worker it is; /metrics serves every worker's merged; audit has a file per worker, a configured replicaId a suffix per worker.
  const logger = createLogger(config).child({ worker: id });
  const promRegistry = new PromRegistry();
  const adaptConfig = (loaded: SwitchyardConfig) => workerConfig(loaded, id);
  const gateway = await startGateway(adaptConfig(config), {
    ...listen,
    adaptConfig,
    watchConfig: false,
    logger,
    promRegistry,
    metricsText: workerMetrics(promRegistry),
    hourlyCost: id === 1,
  });
  gateway.logger.info({ url: gateway.url, pid: process.pid }, 'worker listening');
  announceListening(gateway.url, gateway.adminUrl);
  exitOnSignals(gateway);
  // SIGHUP goes to the primary, which passes a reload to every worker
  workerReloads(gateway.app.switchyard, gateway.logger);
  // The primary is gone (killed): drain and exit rather than serve on unsupervised.
  process.once('disconnect', () => {
    gateway.shutdown('primary exited').then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

async function demo(argv: string[]): Promise<void> {
  const values = flagsOf(argv, { port: { type: 'string' } }, demoUsage) as { port?: string };
  const running = await startDemo(values.port ? { ...process.env, PORT: String(portOf(values.port, demoUsage)) } : process.env);
  const url = running.gateway.url;
  console.log(`
Switchyard demo is running at ${url}
  backends: sim-vllm (${running.simulators[0]?.url}), sim-llamacpp (${running.simulators[1]?.url})
  models:   demo-chat (alias chat), demo-embed (alias embed)

Try it:
  curl -s ${url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"demo-chat","messages":[{"role":"user","content":"Hello!"}]}'

  curl -sN ${url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"demo-chat","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'

With the openai SDK (npm install openai):
  import OpenAI from 'openai';
  const client = new OpenAI({ baseURL: '${url}/v1', apiKey: 'unused' });
  const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'Hello!' }] });
  console.log(answer.choices[0].message.content);

Metrics: ${url}/metrics   Readiness: ${url}/readyz   Stop: Ctrl-C
`);
  exitOnSignals(running.gateway, async () => {
    await Promise.all(running.simulators.map((simulator) => simulator.close()));
  });
}

async function sim(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(simUsage());
    return;
  }
  let options: ReturnType<typeof parseSimArgs>;
  try {
    options = parseSimArgs(argv);
  } catch (error) {
    fail(`${(error as Error).message}\n\n${simUsage()}`);
  }
  const simulator = await startSimulator(options);
  console.log(`switchyard sim (${options.flavor}, model ${options.model}) listening on ${simulator.url}`);
  const stop = () => {
    simulator.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

function configCheck(argv: string[]): void {
  const [sub, file] = argv;
  if (sub !== 'check' || !file) fail('Usage: switchyard config check FILE');
  const config = loadOrExit(resolve(file));
  console.log(`${file}: valid (${config.backends.length} backends, ${config.models.length} models)`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'demo':
      return demo(rest);
    case 'sim':
      return sim(rest);
    case 'config':
      return configCheck(rest);
    case 'keys':
      if (rest.length === 0) {
        console.log(keysUsage);
        return;
      }
      try {
        console.log(await runKeysCommand(rest, (file) => loadOrExit(resolve(file))));
      } catch (error) {
        fail((error as Error).message);
      }
      return;
    case 'audit': {
      let result: { output: string; code: number };
      try {
        result = runAuditCommand(rest, (file) => loadOrExit(resolve(file)));
      } catch (error) {
        fail((error as Error).message);
      }
      if (result.code !== 0) fail(result.output);
      console.log(result.output);
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(usage);
      return;
    default:
      fail(`Unknown command "${command}".\n\n${usage}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // A system error (port in use, no permission, missing file) is the operator's to fix: its message says it all.
  const system = error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
  console.error(error instanceof Error ? (system ? `switchyard: ${error.message}` : (error.stack ?? error.message)) : String(error));
  process.exit(1);
});
