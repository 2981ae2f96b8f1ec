import { KIND_ORDER, type Diff, type Resource, type Upsert } from '../../engine/src/index.js';

/** Bounds of one host's history: entries, and their size as sent (bytes of JSON). */
export const HISTORY_LIMITS = { entries: 64, bytes: 64 * 1024 };

/**
 * The recent diffs of one host, so that an agent that was away can be brought forward
 * with one composed diff instead of a snapshot. Bounded by count and by bytes (a diff
 * larger than the byte bound is not kept at all): when an agent's revision is older than
 * what is kept, `since` says so and the caller sends a snapshot.
 */
export class DiffHistory {
  private readonly entries: { from: number; to: number; diff: Diff; bytes: number }[] = [];
  private bytes = 0;

  constructor(
    /** The host's desired revision when the history starts (nothing is known before it). */
    private start: number,
    private readonly limit = HISTORY_LIMITS.entries,
    private readonly byteLimit = HISTORY_LIMITS.bytes,
  ) {}

  /** The size of what is kept, bytes. */
  get size(): number {
    return this.bytes;
  }

  /** The host's latest desired revision. */
  get revision(): number {
    return this.entries.length ? this.entries[this.entries.length - 1].to : this.start;
  }

  /** Records the diff to revision `to`; `bytes` is its size as sent (estimated if absent). */
  record(to: number, diff: Diff, bytes = diffBytes(diff)): { from: number } {
    const from = this.revision;
    this.entries.push({ from, to, diff, bytes });
    this.bytes += bytes;
    while (
      this.entries.length > 0 &&
      (this.entries.length > this.limit || this.bytes > this.byteLimit)
    ) {
      const dropped = this.entries.shift()!;
      this.bytes -= dropped.bytes;
      this.start = dropped.to;
    }
    return { from };
  }

  /**
   * One diff from the state at `applied` to the latest, or null when `applied` is older
   * than the history. An agent whose revision is at or past the latest needs nothing.
   */
  since(applied: number): Diff | null {
    if (applied >= this.revision) return { upserts: [], deletes: [] };
    if (applied < this.start) return null;
    return compose(this.entries.filter((e) => e.to > applied).map((e) => e.diff));
  }
}

/** The size of a diff as JSON, bytes. */
export function diffBytes(diff: Diff): number {
  return Buffer.byteLength(JSON.stringify(diff));
}

function order(a: Resource, b: Resource): number {
  return KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/**
 * Composes consecutive diffs into one that takes the first one's starting state to the
 * last one's final state: for each key, the last word wins; a key created inside the
 * window and deleted again never reaches the agent; a key that existed before keeps
 * `replace` if any step replaced it.
 */
export function compose(diffs: readonly Diff[]): Diff {
  const firstSeen = new Map<string, 'created' | 'existed'>();
  const last = new Map<string, { upsert?: Upsert; deleted?: Resource; replaced: boolean }>();
  for (const d of diffs) {
    for (const u of d.upserts) {
      if (!firstSeen.has(u.key)) firstSeen.set(u.key, u.op === 'create' ? 'created' : 'existed');
      const prev = last.get(u.key);
      last.set(u.key, { upsert: u, replaced: (prev?.replaced ?? false) || u.op === 'replace' });
    }
    for (const r of d.deletes) {
      if (!firstSeen.has(r.key)) firstSeen.set(r.key, 'existed');
      const prev = last.get(r.key);
      last.set(r.key, { deleted: r, replaced: prev?.replaced ?? false });
    }
  }
  const upserts: Upsert[] = [];
  const deletes: Resource[] = [];
  for (const [key, v] of last) {
    const existed = firstSeen.get(key) === 'existed';
    if (v.upsert) {
      const op = !existed
        ? 'create'
        : v.replaced
          ? 'replace'
          : v.upsert.op === 'create'
            ? 'replace'
            : v.upsert.op;
      upserts.push({ ...v.upsert, op });
    } else if (v.deleted && existed) deletes.push(v.deleted);
  }
  upserts.sort(order);
  deletes.sort((a, b) => order(b, a));
  return { upserts, deletes };
}
