import { describe, expect, it } from '@jest/globals';
import type { Resource } from '../../engine/src/index.js';
import { encode } from './messages.js';
import { parseControllerFrame } from './parse.js';
import { encodeInParts, PartAssembler } from './parts.js';

const route = (i: number): Resource => ({
  kind: 'route',
  key: `route:10.${i >> 8}.${i & 255}.0/24`,
  spec: { dst: `10.${i >> 8}.${i & 255}.0/24`, via: '192.0.2.1', dev: null, onlink: false },
});
const routes = (n: number) => Array.from({ length: n }, (_, i) => route(i));

/** Parses every encoded part as the agent does and feeds the assembler. */
function reassemble(texts: string[]) {
  const a = new PartAssembler();
  const results = texts.map((t) => {
    const p = parseControllerFrame(t);
    if (!p.ok) throw new Error(p.error);
    if (p.frame.type === 'error') throw new Error('error frame');
    return a.add(p.frame);
  });
  return { results, assembler: a };
}

describe('frames in parts', () => {
  it('sends a frame that fits as it is', () => {
    const f = { type: 'snapshot', cluster: 'c', revision: 3, resources: routes(10) } as const;
    expect(encodeInParts(f, 1 << 20)).toEqual([encode(f)]);
  });

  it('splits a snapshot into parts that each fit, and reassembles it in order', () => {
    const f = { type: 'snapshot', cluster: 'c', revision: 7, resources: routes(5000) } as const;
    const limit = 64 * 1024;
    const texts = encodeInParts(f, limit);
    expect(texts.length).toBeGreaterThan(Buffer.byteLength(encode(f)) / limit);
    for (const t of texts) expect(Buffer.byteLength(t)).toBeLessThanOrEqual(limit);
    const { results } = reassemble(texts);
    expect(results.slice(0, -1).every((r) => r === null)).toBe(true);
    const last = results.at(-1) as unknown as { frame: unknown };
    expect(last.frame).toEqual({ v: 1, ...f });
  });

  it('keeps the order of upserts and deletes across part boundaries', () => {
    const all = routes(3000);
    const f = {
      type: 'diff',
      cluster: 'c',
      fromRevision: 4,
      toRevision: 9,
      upserts: all.slice(0, 1700).map((r) => ({ ...r, op: 'create' as const })),
      deletes: all.slice(1700),
    } as const;
    const texts = encodeInParts(f, 32 * 1024);
    expect(texts.length).toBeGreaterThan(3);
    const last = reassemble(texts).results.at(-1) as { frame: unknown };
    expect(last.frame).toEqual({ v: 1, ...f });
  });

  it('halves a part that is still too big (uneven resource sizes)', () => {
    // a long `via` makes the first resources much bigger than the rest
    const big = routes(400).map((r, i) =>
      i < 20 ? ({ ...r, spec: { ...r.spec, via: 'x'.repeat(4000) } } as Resource) : r,
    );
    const f = { type: 'snapshot', cluster: 'c', revision: 1, resources: big } as const;
    const texts = encodeInParts(f, 16 * 1024);
    for (const t of texts) expect(Buffer.byteLength(t)).toBeLessThanOrEqual(16 * 1024);
    expect((reassemble(texts).results.at(-1) as { frame: unknown }).frame).toEqual({ v: 1, ...f });
  });

  it('abandons an assembly on a part out of order or an interleaved frame', () => {
    const f = { type: 'snapshot', cluster: 'c', revision: 2, resources: routes(3000) } as const;
    const texts = encodeInParts(f, 32 * 1024);
    expect(texts.length).toBeGreaterThan(2);
    const skipped = reassemble([texts[0], texts[2]]).results;
    expect(skipped[1]).toEqual({ error: expect.stringMatching(/out of order/) });
    const other = encode({
      type: 'diff',
      cluster: 'c',
      fromRevision: 2,
      toRevision: 3,
      upserts: [],
      deletes: [],
    });
    const interleaved = reassemble([texts[0], other]);
    expect(interleaved.results[1]).toEqual({
      error: expect.stringMatching(/before the last part/),
    });
    expect(interleaved.assembler.assembling).toBe(false);
    // a part from a different revision is not mixed in
    const g = encodeInParts({ ...f, revision: 3 }, 32 * 1024);
    expect(reassemble([texts[0], g[1]]).results[1]).toEqual({ error: expect.any(String) });
  });

  it('refuses malformed part fields', () => {
    const base = { v: 1, type: 'snapshot', cluster: 'c', revision: 1, resources: [] };
    for (const bad of [
      { part: 0 },
      { part: 2, parts: 2 },
      { part: -1, parts: 2 },
      { part: 0, parts: 1e9 },
    ]) {
      const p = parseControllerFrame(JSON.stringify({ ...base, ...bad }));
      expect(p.ok).toBe(false);
    }
  });
});
