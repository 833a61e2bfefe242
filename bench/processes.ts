/**
 * Child processes of the benchmark: start pinned (`taskset -c CPU`), wait until
 * ready, read their CPU time and RSS from /proc, stop them — and never leave one
 * behind (every child has bench/watch-parent.ts preloaded and exits when the
 * bench's end of its stdin closes; normal exits and signals stop them too).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

const watchParent = fileURLToPath(new URL('./watch-parent.ts', import.meta.url));

let tasksetPath: string | undefined | null = null;

/** The taskset binary, or undefined when missing. */
export function taskset(): string | undefined {
  if (tasksetPath === null) {
    const found = spawnSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' });
    tasksetPath = found.status === 0 && found.stdout.trim() !== '' ? found.stdout.trim() : undefined;
  }
  return tasksetPath;
}

/** CPUs this process may run on, as the kernel lists them (e.g. "0-1"). */
export function allowedCpus(pid: number | 'self' = 'self'): string {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return /^Cpus_allowed_list:\s*(.+)$/m.exec(status)?.[1]?.trim() ?? '?';
}

/**
 * Pins this process (all its threads; threads made later inherit the mask) to
 * one CPU. Same effect as re-executing under `taskset -c`, without a second
 * process to forward signals through. Returns false (and the caller warns) when
 * taskset is missing or fails.
 */
export function pinSelf(cpu: number): boolean {
  const bin = taskset();
  if (!bin) return false;
  const result = spawnSync(bin, ['-a', '-p', '-c', String(cpu), String(process.pid)], { encoding: 'utf8' });
  return result.status === 0 && allowedCpus() === String(cpu);
}

/** A free TCP port on 127.0.0.1 (closed again before returning). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const clockTicks = (() => {
  const result = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const value = Number(result.stdout?.trim());
  return Number.isFinite(value) && value > 0 ? value : 100;
})();

/** User + system CPU time of a process in µs (from /proc/PID/stat; resolution 1/CLK_TCK s). */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / clockTicks;
}

/** Pids of a process's children (a gateway's cluster workers), from /proc; empty when none or unreadable. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** CPU time (µs) of a process and its children: the primary plus its workers with server.workers > 1. */
export function treeCpuMicros(pid: number): number {
  let total = cpuMicros(pid);
  for (const child of childPids(pid)) {
    try {
      total += cpuMicros(child);
    } catch {
      // exited between the listing and the read
    }
  }
  return total;
}

/** Resident set size (MiB) of a process and its children. */
export function treeRssMiB(pid: number): number {
  return childPids(pid).reduce((total, child) => total + (rssMiB(child) || 0), rssMiB(pid));
}

/**
 * Busy time of every CPU in µs since boot, from /proc/stat: user + nice +
 * system + irq + softirq + steal (time the CPU did something else than idle,
 * or was taken by the hypervisor). Index = CPU number.
 */
export function cpuBusyMicros(): number[] {
  const busy: number[] = [];
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const match = /^cpu(\d+) (.*)$/.exec(line);
      if (!match) continue;
      const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = (match[2] as string).trim().split(/\s+/).map(Number);
      busy[Number(match[1])] = ((user + nice + system + irq + softirq + steal) * 1e6) / clockTicks;
    }
  } catch {}
  return busy;
}

/** Resident set size of a process in MiB (VmRSS), or NaN when unknown. */
export function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/^VmRSS:\s*(\d+)\s*kB/m.exec(status)?.[1]);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

export interface ServiceSpec {
  name: string;
  /** Node script and its arguments. */
  script: string;
  args: string[];
  /** Options for node itself (before the script), e.g. V8 flags. */
  nodeArgs?: string[];
  /** Pin to this CPU, or CPU list ("1-2"), with taskset (ignored when taskset is missing). */
  cpu: number | string | undefined;
  cwd?: string;
  env?: Record<string, string>;
  /** Run under `nice -n N` (negative = higher priority; needs privileges). */
  nice?: number;
  /** URL polled until it answers 200. */
  readyUrl: string;
  readyTimeoutMs?: number;
}

export interface Service {
  name: string;
  pid: number;
  cpus: string;
  child: ChildProcess;
  stderrTail(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** Kills every child still running (SIGTERM, then SIGKILL after the grace). */
export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...live].map((child) => stopChild(child, graceMs)));
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    live.delete(child);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      live.delete(child);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number, name: string, tail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail()}`);
    }
    try {
      const response = await request(url, { headersTimeout: 1000, bodyTimeout: 1000 });
      await response.body.dump();
      if (response.statusCode === 200) return;
      lastError = `HTTP ${response.statusCode}`;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${name} not ready at ${url} after ${timeoutMs} ms (${lastError}):\n${tail()}`);
}

/**
 * Starts `node [--import watch-parent] script args` (under `taskset -c cpu`
 * when possible) with stdout to /dev/null — logs are written but nobody has to
 * read them — and stderr kept (last 8 KiB) for error messages.
 */
export async function startService(spec: ServiceSpec): Promise<Service> {
  installHooks();
  // taskset and nice exec the next program, so the child's pid is node's pid.
  let argv = [process.execPath, ...(spec.nodeArgs ?? []), '--import', watchParent, spec.script, ...spec.args];
  if (spec.nice !== undefined && spec.nice !== 0) argv = ['nice', '-n', String(spec.nice), ...argv];
  const bin = taskset();
  if (spec.cpu !== undefined && bin) argv = [bin, '-c', String(spec.cpu), ...argv];
  const [command, ...args] = argv as [string, ...string[]];
  const child = spawn(command, args, {
    cwd: spec.cwd,
    env: { ...process.env, ...spec.env, SWITCHYARD_BENCH_CHILD: '1' },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-8192);
  });
  const tail = () => stderr.trim();
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  try {
    await waitReady(spec.readyUrl, child, spec.readyTimeoutMs ?? 20_000, spec.name, tail);
  } catch (error) {
    await stopChild(child, 1000);
    throw error;
  }
  const pid = child.pid as number;
  return {
    name: spec.name,
    pid,
    cpus: allowedCpus(pid),
    child,
    stderrTail: tail,
    stop: () => stopChild(child, 3000),
  };
}

/**
 * Gives each process its own CPU quota (`fraction` of one CPU, in 10 ms periods) through a cgroup of the `cpu`
 * controller, v1 (`/sys/fs/cgroup/cpu`) or v2 (`/sys/fs/cgroup`). Used by `--worker-quota` to stand in for cores a
 * small machine does not have: N workers with a quota each behave as N slower cores of their own. Needs root.
 * The cgroups are removed at exit (after the processes in them ended).
 */
export function limitCpu(pids: readonly number[], fraction: number, label: string): void {
  const period = 10_000;
  const quota = Math.max(1_000, Math.round(fraction * period));
  const v1 = existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us');
  const root = v1 ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup';
  if (!v1 && !existsSync('/sys/fs/cgroup/cgroup.subtree_control')) throw new Error('--worker-quota needs the cgroup cpu controller (/sys/fs/cgroup/cpu or cgroup v2)');
  const parent = join(root, `switchyard-bench-${process.pid}`);
  mkdirSync(parent, { recursive: true });
  if (!v1) writeFileSync(join(parent, 'cgroup.subtree_control'), '+cpu');
  if (!cgroupsMade) {
    cgroupsMade = true;
    process.once('exit', () => {
      for (const dir of readdirSync(parent)) {
        const path = join(parent, dir);
        try {
          rmdirSync(path);
        } catch {
          // a process still in it: the kernel keeps the cgroup until it ends
        }
      }
      try {
        rmdirSync(parent);
      } catch {
        // as above
      }
    });
  }
  pids.forEach((pid, index) => {
    const dir = join(parent, `${label}-${index}`);
    mkdirSync(dir, { recursive: true });
    if (v1) {
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(period));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quota));
    } else {
      writeFileSync(join(dir, 'cpu.max'), `${quota} ${period}`);
    }
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  });
}
let cgroupsMade = false;
