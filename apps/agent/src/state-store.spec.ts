import { afterEach, describe, expect, it } from '@jest/globals';
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  applyDiff,
  diff,
  resource,
  type Diff,
  type Resource,
} from '../../../libs/engine/src/index.js';
import { applyDiffInPlace, StateStore, type SavedState } from './state-store.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'lattice-store-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const sysctl = (name: string, value: string) => resource('sysctl', { name, value });
const stateOf = (rs: Resource[]) => new Map(rs.map((r) => [r.key, r]));

/** Drives a store as the agent does: apply in place, then append. */
function step(store: StateStore, s: SavedState, to: number, d: Diff, cluster = 'c1'): void {
  const from = s.revision;
  applyDiffInPlace(s.resources, d);
  s.revision = to;
  s.cluster = cluster;
  store.append(from, to, cluster, d, () => s);
}

describe('applyDiffInPlace', () => {
  it('matches applyDiff from the engine', () => {
    const state = fc.array(
      fc.record({ n: fc.integer({ min: 0, max: 20 }), v: fc.integer({ min: 0, max: 3 }) }),
      { maxLength: 20 },
    );
    fc.assert(
      fc.property(state, state, (a, b) => {
        const sa = stateOf(a.map((x) => sysctl(`k${x.n}`, `${x.v}`)));
        const sb = stateOf(b.map((x) => sysctl(`k${x.n}`, `${x.v}`)));
        const d = diff(sa, sb);
        const copy = applyDiff(sa, d);
        applyDiffInPlace(sa, d);
        expect([...sa.entries()].sort()).toEqual([...copy.entries()].sort());
        expect([...sa.values()].sort((x, y) => (x.key < y.key ? -1 : 1))).toEqual(
          [...sb.values()].sort((x, y) => (x.key < y.key ? -1 : 1)),
        );
      }),
    );
  });
});

describe('StateStore', () => {
  it('has nothing to load in an empty directory', () => {
    expect(new StateStore(tmp()).load()).toBeUndefined();
  });

  it('replays the journal on top of the snapshot, without rewriting the snapshot', () => {
    const dir = tmp();
    const store = new StateStore(dir);
    const s: SavedState = { revision: 0, resources: new Map() };
    step(store, s, 1, diff(new Map(), stateOf([sysctl('a', '1'), sysctl('b', '1')])));
    store.compact(s);
    const snapshotMtime = statSync(join(dir, 'state.json')).mtimeMs;
    const snapshotText = readFileSync(join(dir, 'state.json'), 'utf8');
    step(store, s, 3, diff(s.resources, stateOf([sysctl('a', '2'), sysctl('b', '1')])));
    step(store, s, 4, diff(s.resources, stateOf([sysctl('a', '2'), sysctl('c', '1')])));
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe(snapshotText);
    expect(statSync(join(dir, 'state.json')).mtimeMs).toBe(snapshotMtime);
    expect(readFileSync(join(dir, 'state.journal'), 'utf8').trim().split('\n')).toHaveLength(2);
    store.close();

    const loaded = new StateStore(dir).load()!;
    expect(loaded.revision).toBe(4);
    expect(loaded.cluster).toBe('c1');
    expect(loaded.replayed).toBe(2);
    expect(loaded.resources).toEqual(stateOf([sysctl('a', '2'), sysctl('c', '1')]));
  });

  it('loads a journal without a snapshot (a fresh agent that never compacted)', () => {
    const dir = tmp();
    const store = new StateStore(dir);
    const s: SavedState = { revision: 0, resources: new Map() };
    step(store, s, 2, diff(new Map(), stateOf([sysctl('a', '1')])));
    store.close();
    expect(new StateStore(dir).load()).toMatchObject({ revision: 2, replayed: 1 });
  });

  it('stops at a torn last line', () => {
    const dir = tmp();
    const store = new StateStore(dir);
    const s: SavedState = { revision: 0, resources: new Map() };
    step(store, s, 1, diff(new Map(), stateOf([sysctl('a', '1')])));
    step(store, s, 2, diff(s.resources, stateOf([sysctl('a', '2')])));
    store.close();
    const text = readFileSync(join(dir, 'state.journal'), 'utf8');
    writeFileSync(join(dir, 'state.journal'), text.slice(0, text.length - 10));
    const loaded = new StateStore(dir).load()!;
    expect(loaded.revision).toBe(1);
    expect(loaded.resources).toEqual(stateOf([sysctl('a', '1')]));
  });

  it('skips lines older than the snapshot (a crash between rename and truncate)', () => {
    const dir = tmp();
    const store = new StateStore(dir);
    const s: SavedState = { revision: 0, resources: new Map() };
    step(store, s, 5, diff(new Map(), stateOf([sysctl('a', '1')])), 'old');
    const stale = readFileSync(join(dir, 'state.journal'), 'utf8');
    // a snapshot from another database, at a lower revision
    const t: SavedState = { revision: 2, cluster: 'new', resources: stateOf([sysctl('z', '1')]) };
    store.compact(t);
    store.close();
    // as if the truncation never happened
    appendFileSync(join(dir, 'state.journal'), stale);
    expect(new StateStore(dir).load()).toMatchObject({ revision: 2, cluster: 'new', replayed: 0 });
  });

  it('reads a state file of the previous format (no generation, no journal)', () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'state.json'),
      JSON.stringify({ revision: 7, cluster: 'c', resources: [sysctl('a', '1')] }),
    );
    const store = new StateStore(dir);
    const s = store.load()!;
    expect(s).toMatchObject({ revision: 7, cluster: 'c', replayed: 0 });
    step(store, s, 8, diff(s.resources, stateOf([sysctl('a', '2')])), 'c');
    store.close();
    expect(new StateStore(dir).load()).toMatchObject({ revision: 8, replayed: 1 });
  });

  it('ignores a damaged snapshot', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'state.json'), '{"revision": 3, "resou');
    const lines: string[] = [];
    expect(new StateStore(dir, (l) => lines.push(l)).load()).toBeUndefined();
    expect(lines.join()).toMatch(/unreadable/);
  });

  it('compacts once the journal outgrows the snapshot, keeping writes proportional to diffs', () => {
    const dir = tmp();
    const store = new StateStore(dir);
    const s: SavedState = { revision: 0, resources: new Map() };
    const big = Array.from({ length: 2000 }, (_, i) => sysctl(`net.k${i}`, 'x'.repeat(100)));
    step(store, s, 1, diff(new Map(), stateOf(big)));
    store.compact(s);
    const snapshotBytes = statSync(join(dir, 'state.json')).size;
    let compactions = 0;
    let lastMtime = statSync(join(dir, 'state.json')).mtimeMs;
    let journalWritten = 0;
    for (let r = 2; r < 3000; r++) {
      const before = store.pendingJournalBytes;
      const next = new Map(s.resources);
      next.set(`sysctl:net.k${r % 2000}`, sysctl(`net.k${r % 2000}`, `${r}`.repeat(30)));
      step(store, s, r, diff(s.resources, next));
      journalWritten += store.pendingJournalBytes > before ? store.pendingJournalBytes - before : 0;
      const m = statSync(join(dir, 'state.json')).mtimeMs;
      if (store.pendingJournalBytes === 0 || m !== lastMtime) compactions++;
      lastMtime = m;
    }
    expect(compactions).toBeGreaterThan(0);
    // each compaction wrote about the snapshot after at least as many journal bytes
    expect(compactions * snapshotBytes).toBeLessThanOrEqual(journalWritten + 2 * snapshotBytes);
    store.close();
    const loaded = new StateStore(dir).load()!;
    expect(loaded.revision).toBe(2999);
    expect(loaded.resources).toEqual(s.resources);
  });
});
