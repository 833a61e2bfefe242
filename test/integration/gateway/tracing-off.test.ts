/**
 * Tracing off (the default) must not load the OpenTelemetry SDK at all: a resolve hook records every module
 * this test process resolves while a gateway starts and serves with tracing off, then with it on (the control).
 */
import { registerHooks } from 'node:module';
import { describe, expect, it } from 'vitest';

const resolved: string[] = [];
registerHooks({
  resolve(specifier, context, nextResolve) {
    resolved.push(specifier);
    return nextResolve(specifier, context);
  },
});

// The gateway's modules load after the hook, so a static import of the SDK anywhere in them would be seen.
const { backendFor, closedAfterEach } = await import('../../helpers/gateway.ts');

const sdk = (specifier: string): boolean => /@opentelemetry\/(sdk-trace-base|exporter-trace-otlp-http|resources|core)\b/.test(specifier);

describe('tracing off', () => {
  const { sim, gateway } = closedAfterEach();

  it('never imports the SDK; turned on, the same process does', async () => {
    const backend = await sim({ flavor: 'vllm' });
    const config = { backends: [backendFor('b', backend)], models: [{ name: 'm', targets: [{ backend: 'b', model: 'Qwen/Qwen3-8B' }] }] };
    const off = await gateway(config);
    await off.client().chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    await off.close();
    expect(resolved.filter(sdk)).toEqual([]);

    // The control: the hook does see the SDK arrive once tracing is on (an unreachable collector is fine here).
    const on = await gateway({ ...config, tracing: { enabled: true, endpoint: 'http://127.0.0.1:9/v1/traces', exportTimeoutMs: 200 } });
    await on.close();
    expect(resolved.filter(sdk).some((specifier) => specifier.includes('@opentelemetry/sdk-trace-base'))).toBe(true);
  });
});
