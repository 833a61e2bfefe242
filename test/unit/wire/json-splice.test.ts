import { describe, expect, it } from 'vitest';
import { findTopLevel, spliceTopLevel, stringEnd } from '../../../src/wire/json-splice.ts';
import { extractUsage, isUsageOnlyChunk, rewriteModel } from '../../../src/wire/chunk-edit.ts';

describe('top-level JSON splicing', () => {
  const tricky = JSON.stringify({
    messages: [{ role: 'user', content: 'say "model": "evil" \\" and {"model":"x"} [' }],
    nested: { model: 'inner', list: [1, { model: 'deeper' }] },
    model: 'public',
    n: 2,
    flag: true,
  });

  it('finds top-level members only, skipping nested and quoted look-alikes', () => {
    const spans = findTopLevel(tricky, ['model', 'n', 'flag']);
    const model = spans.get('model');
    expect(model && tricky.slice(model.start, model.end)).toBe('"public"');
    const n = spans.get('n');
    expect(n && tricky.slice(n.start, n.end)).toBe('2');
    const flag = spans.get('flag');
    expect(flag && tricky.slice(flag.start, flag.end)).toBe('true');
  });

  it('replaces and inserts members, leaving everything else byte-identical', () => {
    const out = spliceTopLevel(tricky, [
      { key: 'model', value: '"Qwen/Qwen3-8B"' },
      { key: 'stream_options', value: '{"include_usage":true}' },
    ]);
    const parsed = JSON.parse(out) as Record<string, unknown>;
    expect(parsed.model).toBe('Qwen/Qwen3-8B');
    expect(parsed.stream_options).toEqual({ include_usage: true });
    expect(parsed.messages).toEqual(JSON.parse(tricky).messages);
    expect((parsed.nested as { model: string }).model).toBe('inner');
    expect(out.endsWith(tricky.slice(tricky.indexOf(',"n":')))).toBe(true);
  });

  it('a member known to be present is found by its only occurrence, and by a full scan whenever that is ambiguous', () => {
    const cases: Array<Record<string, unknown>> = [
      { messages: [{ role: 'model', content: 'hi' }], model: 'public' }, // "model" also as a value
      { model: 'public', tools: [{ function: { parameters: { properties: { model: { type: 'string' } } } } }] }, // nested key too
      { 'say "model': 1, model: 'public' }, // a key ending in an escaped quote + model
      { messages: [{ content: '{"model": "x"}' }], model: 'public' }, // look-alike inside a string
      { model: 'public', metadata: { model: 'inner' } }, // nested after the top-level one
    ];
    for (const body of cases) {
      for (const text of [JSON.stringify(body), JSON.stringify(body, null, 2)]) {
        const out = JSON.parse(spliceTopLevel(text, [{ key: 'model', value: '"Qwen/Qwen3-8B"', present: true }])) as Record<string, unknown>;
        expect(out).toEqual({ ...body, model: 'Qwen/Qwen3-8B' });
      }
    }
  });

  it('handles whitespace and an empty object', () => {
    expect(JSON.parse(spliceTopLevel('{ "model" : "a" , "x" : [ ] }', [{ key: 'model', value: '"b"' }]))).toEqual({ model: 'b', x: [] });
    expect(JSON.parse(spliceTopLevel('{}', [{ key: 'stream', value: 'true' }]))).toEqual({ stream: true });
  });
});

describe('chunk edits', () => {
  it('rewrites the model of a chunk, whatever the key order', () => {
    const vllm = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"content":"\\"model\\":\\"x\\""}}]}';
    expect(JSON.parse(rewriteModel(vllm, '"demo-chat"')).model).toBe('demo-chat');
    expect(JSON.parse(rewriteModel(vllm, '"demo-chat"')).choices[0].delta.content).toBe('"model":"x"');
    const llama = '{"choices":[{"delta":{"content":"hi"},"index":0}],"created":1,"id":"c","model":"alias","object":"chat.completion.chunk"}';
    expect(JSON.parse(rewriteModel(llama, '"demo-chat"')).model).toBe('demo-chat');
  });

  it('finds the end of a string past escaped quotes, and leaves a chunk whose model never ends as it was', () => {
    // `"a\\"b"`: two backslashes escape nothing, so it ends after the second quote; `"a\\\"b"` after the third.
    expect(stringEnd('"a\\\\"b"', 0)).toBe(5);
    expect(stringEnd('"a\\\\\\"b"', 0)).toBe(8);
    expect(stringEnd('x"plain"', 1)).toBe(8);
    expect(stringEnd('"never ends', 0)).toBe(-1);
    expect(stringEnd('"escaped at the end\\"', 0)).toBe(-1);
    const cut = '{"model":"Qwen/Qw';
    expect(rewriteModel(cut, '"demo-chat"')).toBe(cut);
  });

  it('reads usage and recognises the usage-only chunk', () => {
    const usageChunk = '{"id":"c","choices":[],"model":"m","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":3}}}';
    expect(extractUsage(usageChunk)).toEqual({ prompt_tokens: 5, completion_tokens: 7, total_tokens: 12, cached_tokens: 3 });
    expect(isUsageOnlyChunk(usageChunk)).toBe(true);
    expect(isUsageOnlyChunk('{"choices":[{"delta":{}}],"usage":null}')).toBe(false);
    expect(extractUsage('{"choices":[{"delta":{"content":"usage"}}],"usage":null}')).toBeUndefined();
  });
});

describe('a key written twice or spelled with escapes', () => {
  it('replaces every occurrence of a duplicated top-level key, so no runtime reads a value the gateway did not choose', () => {
    for (const text of [
      '{"model":"a","messages":[],"model":"b"}',
      '{"model":"a","model":"b","stream":true}',
      '{"mod\\u0065l":"evil","messages":[],"model":"ok"}',
      '{"model":"ok","messages":[],"mod\\u0065l":"evil"}',
    ]) {
      for (const present of [true, false]) {
        const out = spliceTopLevel(text, [{ key: 'model', value: '"target"', present }]);
        expect(JSON.parse(out).model, `${text} present=${present}`).toBe('target');
        // Every occurrence now holds the target, so a runtime keeping the first of duplicate keys reads it too.
        expect(out.split('"target"').length - 1, out).toBe(2);
        expect(out.includes('evil') || out.includes('"a"') || out.includes('"b"') || out.includes('"ok"'), out).toBe(false);
      }
    }
  });
});
