/** Reading values out of a Prometheus text exposition (the gateway's /metrics). */

/** Sum of the samples of `name` whose labels include all of `labels` (0 when none). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const open = line.indexOf('{');
    const close = line.lastIndexOf('}');
    const labelText = open >= 0 && close > open && line.startsWith(`${name}{`) ? line.slice(open + 1, close) : '';
    const found: Record<string, string> = {};
    for (const match of labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found[match[1] as string] = match[2] as string;
    if (!Object.entries(labels).every(([key, value]) => found[key] === value)) continue;
    const value = Number(
      line
        .slice(close > 0 && line.startsWith(`${name}{`) ? close + 1 : name.length)
        .trim()
        .split(' ')[0],
    );
    if (Number.isFinite(value)) total += value;
  }
  return total;
}
