import { describe, expect, it } from '@jest/globals';
import type { Diff, Resource } from '../../engine/src/index.js';
import { DiffHistory, diffBytes } from './resume.js';

const route = (dst: string, via: string): Resource => ({
  kind: 'route',
  key: `route:${dst}`,
  spec: { dst, via, dev: null, onlink: false },
});
const create = (r: Resource): Diff => ({ upserts: [{ ...r, op: 'create' }], deletes: [] });

describe('DiffHistory', () => {
  it('composes what an agent missed into one diff', () => {
    const h = new DiffHistory(10);
    h.record(11, create(route('10.0.1.0/24', '192.0.2.1')));
    h.record(12, { upserts: [], deletes: [route('10.0.1.0/24', '192.0.2.1')] });
    h.record(13, create(route('10.0.2.0/24', '192.0.2.2')));
    expect(h.revision).toBe(13);
    // created and deleted inside the window: never reaches the agent
    expect(h.since(10)).toEqual(create(route('10.0.2.0/24', '192.0.2.2')));
    expect(h.since(12)).toEqual(create(route('10.0.2.0/24', '192.0.2.2')));
    expect(h.since(13)).toEqual({ upserts: [], deletes: [] });
    expect(h.since(9)).toBeNull();
  });

  it('is bounded by count', () => {
    const h = new DiffHistory(0, 3);
    for (let r = 1; r <= 5; r++) h.record(r, create(route(`10.0.${r}.0/24`, '192.0.2.1')));
    expect(h.since(1)).toBeNull();
    expect(h.since(2)?.upserts.map((u) => u.key)).toEqual([
      'route:10.0.3.0/24',
      'route:10.0.4.0/24',
      'route:10.0.5.0/24',
    ]);
  });

  it('is bounded by bytes: old entries go first, a diff over the bound is not kept', () => {
    const one = create(route('10.0.1.0/24', '192.0.2.1'));
    const size = diffBytes(one);
    const h = new DiffHistory(0, 64, size * 2);
    h.record(1, one);
    h.record(2, create(route('10.0.2.0/24', '192.0.2.1')));
    expect(h.size).toBe(size * 2);
    expect(h.since(0)?.upserts).toHaveLength(2);
    h.record(3, create(route('10.0.3.0/24', '192.0.2.1')));
    expect(h.since(0)).toBeNull();
    expect(h.since(1)?.upserts).toHaveLength(2);
    const big: Diff = {
      upserts: Array.from({ length: 10 }, (_, i) => ({
        ...route(`10.1.${i}.0/24`, '192.0.2.9'),
        op: 'create' as const,
      })),
      deletes: [],
    };
    h.record(4, big);
    expect(h.size).toBe(0);
    expect(h.revision).toBe(4);
    expect(h.since(3)).toBeNull(); // the agent gets a snapshot
    expect(h.since(4)).toEqual({ upserts: [], deletes: [] });
  });
});
