/**
 * Preloaded (`node --import ./bench/watch-parent.ts …`) into every process the
 * benchmark starts: the bench holds the write end of the child's stdin, so when
 * the bench dies for any reason (even SIGKILL) stdin ends and the child exits.
 * No orphans. The stdin handle is unref'd so it never keeps a process alive.
 */
if (process.env.SWITCHYARD_BENCH_CHILD === '1' && !process.stdin.isTTY) {
  const quit = () => process.exit(0);
  process.stdin.on('end', quit);
  process.stdin.on('close', quit);
  process.stdin.on('error', quit);
  process.stdin.on('data', () => undefined);
  process.stdin.resume();
  (process.stdin as unknown as { unref?: () => void }).unref?.();
}
export {};
