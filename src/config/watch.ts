/**
 * `server.watchConfig`: the config file watched for changes, each one (or a
 * burst of them: editors write, rename and touch) answered by one reload.
 * The directory is watched, not the file, so a file replaced by rename (how
 * editors and Kubernetes ConfigMap mounts update) is still followed.
 */
import { watch } from 'node:fs';
import { basename, dirname } from 'node:path';

/** A change settles for this long before the reload runs. */
const SETTLE_MS = 200;

/** Calls `onChange` once per settled change to `file`; returns the function that stops watching. */
export function watchConfigFile(file: string, onChange: () => void): () => void {
  const name = basename(file);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
    // Kubernetes swaps a `..data` symlink next to the file: any change in the directory may be ours.
    if (changed !== null && changed !== name && !changed.startsWith('..')) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, SETTLE_MS);
    timer.unref();
  });
  watcher.on('error', () => undefined); // a directory removed under us: nothing more to follow
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}
