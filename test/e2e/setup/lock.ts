// A pid lock file so that two concurrent `npm run e2e:setup` runs don't
// clobber each other's build. A lock whose owner process is gone is stale and
// is taken over.

import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface LockInfo {
  pid: number;
  host: string;
  since: string;
}

function readLock(file: string): LockInfo | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}

export interface Lock {
  release(): void;
}

/**
 * Take the lock at `file`, waiting (up to `timeoutMs`) while another live
 * process holds it. `onWait` is called once when we start waiting.
 */
export async function acquireLock(file: string, opts: { timeoutMs: number; onWait?: (holder: LockInfo) => void }): Promise<Lock> {
  mkdirSync(path.dirname(file), { recursive: true });
  const deadline = Date.now() + opts.timeoutMs;
  let announced = false;
  for (;;) {
    try {
      const fd = openSync(file, 'wx');
      const info: LockInfo = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
      writeSync(fd, JSON.stringify(info));
      closeSync(fd);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        try {
          const cur = readLock(file);
          if (cur?.pid === process.pid) unlinkSync(file);
        } catch {
          // already gone
        }
      };
      process.once('exit', release);
      return { release };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(file);
    const sameHost = holder === null || holder.host === os.hostname();
    if (holder !== null && sameHost && !pidAlive(holder.pid)) {
      // stale: its owner died without cleaning up
      try {
        unlinkSync(file);
      } catch {
        // someone else removed it first
      }
      continue;
    }
    if (holder === null) {
      // being written right now, or garbage; give it a moment
      await sleep(200);
      const again = readLock(file);
      if (again === null) {
        try {
          unlinkSync(file);
        } catch {
          // ignore
        }
      }
      continue;
    }
    if (!announced) {
      announced = true;
      opts.onWait?.(holder);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for lock ${file} held by pid ${holder.pid} on ${holder.host} since ${holder.since}`);
    }
    await sleep(1000);
  }
}
