// The coding-agent CLIs the end-to-end suite runs against the gateway, unchanged: OpenAI's Codex CLI
// (`codex exec`, Responses API) and Anthropic's Claude Code (`claude -p`, Messages API). Both ship as npm
// packages with a native binary in a platform package; `npm run e2e:setup` installs the pinned versions
// into the e2e cache (outside the repo, so `npm ci` for the gateway stays small), and the tests resolve them here.

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { cacheRoot } from './config.ts';
import { log, runChecked, SetupError, which } from './proc.ts';

/** Pinned versions: a new version is a new cache folder. */
export const AGENT_CLIENTS = { '@openai/codex': '0.171.0', '@anthropic-ai/claude-code': '2.1.197' } as const;

/** Where the CLIs are installed. */
export function agentClientsDir(): string {
  const key = Object.entries(AGENT_CLIENTS)
    .map(([name, version]) => `${name.split('/')[1]}${version}`)
    .join('-');
  return path.join(cacheRoot(), `agent-clients-${key}`);
}

/** Paths of the two CLIs. */
export interface AgentClients {
  codex: string;
  claude: string;
}

function binaries(dir: string): AgentClients {
  return { codex: path.join(dir, 'node_modules', '.bin', 'codex'), claude: path.join(dir, 'node_modules', '.bin', 'claude') };
}

/** The installed CLIs; throws "run `npm run e2e:setup` first" when they are missing. */
export function resolveAgentClients(): AgentClients {
  const dir = agentClientsDir();
  const found = binaries(dir);
  const manifest = path.join(dir, 'installed.json');
  if (!existsSync(manifest) || !existsSync(found.codex) || !existsSync(found.claude)) {
    throw new Error(
      `run \`npm run e2e:setup\` first: the agent CLIs (${Object.entries(AGENT_CLIENTS)
        .map(([n, v]) => `${n}@${v}`)
        .join(', ')}) are not installed in ${dir}`,
    );
  }
  const recorded = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, string>;
  for (const [name, version] of Object.entries(AGENT_CLIENTS)) {
    if (recorded[name] !== version) throw new Error(`run \`npm run e2e:setup\` first: ${dir} holds ${name}@${recorded[name]}, this checkout needs ${version}`);
  }
  return found;
}

/** Installs the pinned CLIs from the npm registry once (a few seconds when cached by npm, ~20 s otherwise). */
export async function ensureAgentClients(): Promise<AgentClients> {
  try {
    const ready = resolveAgentClients();
    log(`agent CLIs up to date in ${agentClientsDir()}`);
    return ready;
  } catch {
    // install below
  }
  const npm = which('npm');
  if (npm === null) throw new SetupError('npm is needed to install the agent CLIs');
  const dir = agentClientsDir();
  mkdirSync(dir, { recursive: true });
  if (!existsSync(path.join(dir, 'package.json'))) writeFileSync(path.join(dir, 'package.json'), '{"name":"switchyard-e2e-agent-clients","private":true}\n');
  const specs = Object.entries(AGENT_CLIENTS).map(([name, version]) => `${name}@${version}`);
  log(`installing ${specs.join(' and ')} from the npm registry into ${dir}`);
  await runChecked('npm install (agent CLIs)', npm, ['install', '--prefix', dir, '--no-audit', '--no-fund', '--no-save', ...specs], { timeoutMs: 10 * 60_000 });
  const found = binaries(dir);
  for (const [what, file] of Object.entries(found)) {
    const version = await runChecked(`${what} --version`, file, ['--version'], { timeoutMs: 60_000 });
    log(`${what}: ${version.stdout.trim().split('\n')[0]}`);
  }
  writeFileSync(path.join(dir, 'installed.json.tmp'), `${JSON.stringify(AGENT_CLIENTS)}\n`);
  renameSync(path.join(dir, 'installed.json.tmp'), path.join(dir, 'installed.json'));
  return found;
}
