/**
 * In-process single flight: concurrent identical requests share one upstream
 * call. Across replicas (config `cluster`), this process's leader also takes
 * part in the fleet's flight through a Redis lock (see cluster/flight.ts).
 */

/** The first caller of a key leads; the others follow its result. */
export type Flight<T> =
  | {
      role: 'leader';
      /** Publishes the result (undefined = failed) and ends the flight. */
      complete(value: T | undefined): void;
    }
  | {
      role: 'follower';
      /** The leader's result; undefined when it failed. */
      result: Promise<T | undefined>;
    };

/** Shares one in-flight computation per key. */
export class SingleFlight<T> {
  private readonly flights = new Map<string, { promise: Promise<T | undefined>; resolve: (value: T | undefined) => void }>();

  /** Number of keys in flight. */
  get size(): number {
    return this.flights.size + this.running.size;
  }

  /**
   * Joins the flight for `key`. The leader must call `complete` exactly once
   * (in a `finally`), with undefined when it has nothing to share; a
   * follower that gets undefined should do the work itself (or `begin` again).
   */
  begin(key: string): Flight<T> {
    const existing = this.flights.get(key);
    if (existing) return { role: 'follower', result: existing.promise };
    let resolve: (value: T | undefined) => void = () => undefined;
    const promise = new Promise<T | undefined>((done) => (resolve = done));
    this.flights.set(key, { promise, resolve });
    let completed = false;
    return {
      role: 'leader',
      complete: (value) => {
        if (completed) return;
        completed = true;
        this.flights.delete(key);
        resolve(value);
      },
    };
  }

  /**
   * Runs `loader` once for concurrent callers of `key`; all get its result
   * or its error. (Flights of `run` and `begin` are tracked separately.)
   */
  run(key: string, loader: () => Promise<T>): Promise<T> {
    const existing = this.running.get(key);
    if (existing) return existing;
    const promise = Promise.resolve()
      .then(loader)
      .finally(() => this.running.delete(key));
    this.running.set(key, promise);
    return promise;
  }

  private readonly running = new Map<string, Promise<T>>();
}
