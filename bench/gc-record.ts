/**
 * A GC record for one process, preloaded into a proxy under test:
 *
 *   BENCH_GATEWAY_NODE_ARGS="--import ./bench/gc-record.ts" GC_RECORD_DIR=/tmp/gc \
 *     npm run bench -- --scenarios saturation-32 --reps 1 --targets switchyard
 *
 * (BENCH_PROXY_NODE_ARGS for both proxies.) At exit it writes
 * `$GC_RECORD_DIR/<pid>.json`: per GC kind the count and total pause, the mean
 * scavenge pause, what stayed in new space after each scavenge (survivors),
 * how much old space grew across scavenges (promoted), the largest new space
 * and the process's memory. This is how the in-flight Set's 7–18 ms
 * scavenges were found (README Performance → Scavenges).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

const dir = process.env.GC_RECORD_DIR ?? '/tmp/gc-record';
mkdirSync(dir, { recursive: true });
const kinds: Record<number, string> = { 1: 'scavenge', 2: 'minorMarkSweep', 4: 'markCompact', 8: 'incremental', 16: 'weakCallbacks' };
const byKind: Record<string, { count: number; pauseMs: number }> = {};
const spaceUsed = (name: string) => getHeapSpaceStatistics().find((space) => space.space_name === name);
let lastOld = spaceUsed('old_space')?.space_used_size ?? 0;
let promoted = 0;
let survivors = 0;
let scavenges = 0;
let newSpaceMax = 0;
let longestMs = 0;

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = kinds[(entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
    byKind[kind] ??= { count: 0, pauseMs: 0 };
    const figures = byKind[kind];
    figures.count++;
    figures.pauseMs += entry.duration;
    longestMs = Math.max(longestMs, entry.duration);
    const old = spaceUsed('old_space')?.space_used_size ?? 0;
    const young = spaceUsed('new_space');
    if (kind === 'scavenge') {
      scavenges++;
      promoted += Math.max(0, old - lastOld);
      survivors += young?.space_used_size ?? 0;
    }
    lastOld = old;
    newSpaceMax = Math.max(newSpaceMax, young?.space_size ?? 0);
  }
}).observe({ entryTypes: ['gc'] });

let written = false;
function write(): void {
  if (written) return;
  written = true;
  const scavenge = byKind.scavenge;
  writeFileSync(
    `${dir}/${process.pid}.json`,
    `${JSON.stringify(
      {
        byKind,
        meanScavengeMs: scavenge ? scavenge.pauseMs / scavenge.count : 0,
        longestPauseMs: longestMs,
        survivorsPerScavengeMB: scavenges ? survivors / scavenges / 1e6 : 0,
        promotedMB: promoted / 1e6,
        newSpaceMaxMB: newSpaceMax / 1e6,
        memory: process.memoryUsage(),
      },
      null,
      1,
    )}\n`,
  );
}
process.on('exit', write);
process.prependListener('SIGTERM', write);
