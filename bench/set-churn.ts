/**
 * Why per-request members live in a Bag (src/bag.ts), not a Set: a standalone
 * reproduction. A "request" (an object graph of ~4 KB) joins a collection and
 * leaves it 32 requests later, as the requests in flight did; the run counts
 * the scavenges and their pauses for a Set and for a Bag.
 *
 *   node bin/node24.js bench/set-churn.ts      (~10 s)
 *
 * On the 2-core bench machine (Node 24), three runs: the Set's scavenges pause
 * 12–50 ms each, the Bag's 0.9–2 ms.
 */
import { type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import { Bag, type BagMember } from '../src/bag.ts';

interface Request extends BagMember {
  id: number;
  parts: { index: number; text: string }[];
}

interface Collection {
  add(request: Request): void;
  delete(request: Request): unknown;
}

async function run(name: string, collection: Collection): Promise<void> {
  let scavenges = 0;
  let pauseMs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === 1) {
        scavenges++;
        pauseMs += entry.duration;
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const live: Request[] = [];
  const started = performance.now();
  for (let id = 0; id < 400_000; id++) {
    const request: Request = { bagSlot: -1, id, parts: Array.from({ length: 20 }, (_, index) => ({ index, text: `${'x'.repeat(100)}${id}` })) };
    collection.add(request);
    live.push(request);
    if (live.length > 32) collection.delete(live.shift() as Request);
    if (id % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise((resolve) => setImmediate(resolve));
  observer.disconnect();
  const mean = scavenges === 0 ? 0 : pauseMs / scavenges;
  console.log(`${name.padEnd(4)} scavenges ${scavenges}, mean pause ${mean.toFixed(2)} ms, total ${pauseMs.toFixed(0)} ms, wall ${(performance.now() - started).toFixed(0)} ms`);
}

await run('Set', new Set<Request>());
await run('Bag', new Bag<Request>());
