// Small process helpers for the e2e setup (no dependencies).

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';

const started = Date.now();

function stamp(): string {
  const s = Math.round((Date.now() - started) / 1000);
  const mm = String(Math.floor(s / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return `${mm}:${ss}`;
}

/** One progress line on stdout. */
export function log(msg: string): void {
  process.stdout.write(`[e2e:setup ${stamp()}] ${msg}\n`);
}

export class SetupError extends Error {
  override name = 'SetupError';
}

/** Absolute path of an executable on PATH, or null. */
export function which(name: string): string | null {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return null;
}

const liveChildren = new Set<ChildProcess>();

/**
 * Kill every child started by run() that is still running, with its whole
 * process group (cmake -> make -> compilers), e.g. on SIGINT/SIGTERM.
 */
export function killRunningChildren(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const c of liveChildren) {
    try {
      if (c.pid !== undefined) process.kill(-c.pid, signal);
    } catch {
      c.kill(signal);
    }
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Called with every complete output line (stdout and stderr). */
  onLine?: (line: string) => void;
  /** Keep at most this many characters of each stream (the tail). */
  keepChars?: number;
}

/** Run a command to completion; never rejects for a non-zero exit (check `code`). */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const keep = opts.keepChars ?? 64_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // own process group, so killRunningChildren() reaches make and the compilers too
      detached: true,
    });
    liveChildren.add(child);
    let stdout = '';
    let stderr = '';
    let pendingOut = '';
    let pendingErr = '';
    const feed = (chunk: string, pending: string): string => {
      if (opts.onLine === undefined) return '';
      const text = pending + chunk;
      const lines = text.split('\n');
      const rest = lines.pop() ?? '';
      for (const line of lines) opts.onLine(line);
      return rest;
    };
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      stdout = (stdout + c).slice(-keep);
      pendingOut = feed(c, pendingOut);
    });
    child.stderr.on('data', (c: string) => {
      stderr = (stderr + c).slice(-keep);
      pendingErr = feed(c, pendingErr);
    });
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        stderr += `\n[killed after ${opts.timeoutMs} ms]`;
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, opts.timeoutMs);
    }
    child.on('error', (err) => {
      liveChildren.delete(child);
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      liveChildren.delete(child);
      if (timer) clearTimeout(timer);
      if (opts.onLine !== undefined) {
        if (pendingOut !== '') opts.onLine(pendingOut);
        if (pendingErr !== '') opts.onLine(pendingErr);
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Run and throw a SetupError (with the output tail) unless it exits 0. */
export async function runChecked(what: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  let res: RunResult;
  try {
    res = await run(cmd, args, opts);
  } catch (err) {
    throw new SetupError(`${what}: could not start \`${cmd}\`: ${(err as Error).message}`);
  }
  if (res.code !== 0) {
    const tail = (res.stderr.trim() !== '' ? res.stderr : res.stdout).trim().split('\n').slice(-25).join('\n');
    throw new SetupError(`${what} failed (\`${cmd} ${args.join(' ')}\` exited ${res.code ?? res.signal}):\n${tail}`);
  }
  return res;
}
