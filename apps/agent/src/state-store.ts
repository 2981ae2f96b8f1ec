import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { stripOp, type Diff, type Resource } from '../../../libs/engine/src/index.js';

/** Applies a diff to a state in place (upserts in order, then deletes): O(size of the diff). */
export function applyDiffInPlace(state: Map<string, Resource>, d: Diff): void {
  for (const u of d.upserts) state.set(u.key, stripOp(u));
  for (const r of d.deletes) state.delete(r.key);
}

export interface SavedState {
  revision: number;
  cluster?: string;
  resources: Map<string, Resource>;
}

/** One journal line: a diff applied on top of revision `f`, leaving revision `r`. */
interface JournalEntry {
  /** Generation of the snapshot this entry extends. */
  g: number;
  f: number;
  r: number;
  c?: string;
  u: Diff['upserts'];
  /** Deleted keys. */
  d: string[];
}

function wellFormed(e: JournalEntry): boolean {
  const v = e as unknown as Record<string, unknown>;
  return Number.isSafeInteger(v.r) && Array.isArray(v.u) && Array.isArray(v.d);
}

/** The journal is folded into a new snapshot once it is this long, or longer than the snapshot. */
const COMPACT_MIN_BYTES = 256 * 1024;

/**
 * The agent's applied revision and desired state on disk, in a directory:
 *
 * - `state.json`: a snapshot `{revision, cluster, gen, resources}`, written atomically
 *   (temporary file, fsync, rename), so a crash leaves the old or the new one, never half.
 * - `state.journal`: one JSON line per frame applied since that snapshot
 *   (`{g, f, r, c, u, d}`: generation, from/to revision, cluster, upserts, deleted keys),
 *   appended with one `write(2)` before the frame is acknowledged. Writing a diff costs the
 *   size of the diff, not of the state.
 *
 * The journal is folded into a new snapshot (generation + 1, then the journal is
 * truncated) when it grows past `max(256 KiB, size of the snapshot)`, so the amortised
 * cost stays proportional to the diffs, and on `snapshot`, `compact` and `close`. Loading
 * replays the entries of the snapshot's generation that chain on from its revision and
 * stops at the first torn or foreign line: entries left over from before a compaction
 * that crashed between its rename and the truncation carry an older generation and are
 * skipped.
 *
 * Durability: a journal line is in the kernel when `append` returns, so it survives a crash
 * (or SIGKILL) of the agent process; it is not fsynced, so a power loss may lose the last
 * lines. That is safe: the agent then restores an older revision and says so in `hello`,
 * and the controller sends it what it lacks (the data plane did not survive either).
 */
export class StateStore {
  private readonly snapshotPath: string;
  private readonly journalPath: string;
  private fd: number | undefined;
  private gen = 0;
  private journalBytes = 0;
  private snapshotBytes = 0;

  constructor(
    private readonly dir: string,
    private readonly say: (line: string) => void = () => undefined,
  ) {
    this.snapshotPath = join(dir, 'state.json');
    this.journalPath = join(dir, 'state.journal');
  }

  /** Bytes appended since the last snapshot (for tests). */
  get pendingJournalBytes(): number {
    return this.journalBytes;
  }

  /**
   * What was saved (the snapshot with its journal replayed), or undefined when nothing
   * was. `replayed` counts the journal entries applied on top of the snapshot.
   */
  load(): (SavedState & { replayed: number }) | undefined {
    const base = this.readSnapshot();
    const hasJournal = existsSync(this.journalPath);
    if (!base && !hasJournal) return undefined;
    // No snapshot but a journal: an agent that started from scratch (revision 0, nothing
    // desired) and crashed before its first compaction.
    const state: SavedState = base ?? { revision: 0, resources: new Map() };
    this.gen = base?.gen ?? 0;
    let replayed = 0;
    if (hasJournal) {
      const text = readFileSync(this.journalPath, 'utf8');
      this.journalBytes = Buffer.byteLength(text);
      for (const line of text.split('\n')) {
        if (line === '') continue;
        let e: JournalEntry;
        try {
          e = JSON.parse(line) as JournalEntry;
        } catch {
          this.say(`journal: stopping at a torn line after ${replayed} entries`);
          break;
        }
        if (e.g !== this.gen) continue; // from before the last compaction
        if (e.f !== state.revision || !wellFormed(e)) {
          this.say(`journal: entry ${e.f}→${e.r} does not follow revision ${state.revision}`);
          break;
        }
        for (const u of e.u) state.resources.set(u.key, stripOp(u));
        for (const k of e.d) state.resources.delete(k);
        state.revision = e.r;
        if (e.c !== undefined) state.cluster = e.c;
        replayed++;
      }
    }
    return { ...state, replayed };
  }

  private readSnapshot(): (SavedState & { gen: number }) | undefined {
    if (!existsSync(this.snapshotPath)) return undefined;
    try {
      const text = readFileSync(this.snapshotPath, 'utf8');
      const v = JSON.parse(text) as {
        revision: number;
        cluster?: string;
        gen?: number;
        resources: Resource[];
      };
      if (Number.isSafeInteger(v.revision) && Array.isArray(v.resources)) {
        this.snapshotBytes = Buffer.byteLength(text);
        return {
          revision: v.revision,
          ...(v.cluster !== undefined ? { cluster: v.cluster } : {}),
          gen: Number.isSafeInteger(v.gen) ? v.gen! : 0,
          resources: new Map(v.resources.map((r) => [r.key, r])),
        };
      }
    } catch {
      // fall through: a damaged file means starting from a snapshot
    }
    this.say(`ignoring unreadable ${this.snapshotPath}`);
    return undefined;
  }

  /**
   * Records that `d` took the state from revision `from` to `to` (an empty diff for a
   * change of cluster only). `state` is the state after it: folded into a new snapshot when
   * the journal has grown long enough.
   */
  append(
    from: number,
    to: number,
    cluster: string | undefined,
    d: Diff,
    state: () => SavedState,
  ): void {
    const e: JournalEntry = {
      g: this.gen,
      f: from,
      r: to,
      ...(cluster !== undefined ? { c: cluster } : {}),
      u: d.upserts,
      d: d.deletes.map((r) => r.key),
    };
    const line = Buffer.from(`${JSON.stringify(e)}\n`);
    const fd = this.journal();
    let off = 0;
    while (off < line.length) off += writeSync(fd, line, off);
    this.journalBytes += line.length;
    if (this.journalBytes >= Math.max(COMPACT_MIN_BYTES, this.snapshotBytes)) this.compact(state());
  }

  /** Writes `s` as the new snapshot and empties the journal. */
  compact(s: SavedState): void {
    mkdirSync(this.dir, { recursive: true });
    const gen = this.gen + 1;
    const text = JSON.stringify({
      revision: s.revision,
      cluster: s.cluster,
      gen,
      resources: [...s.resources.values()],
    });
    const tmp = `${this.snapshotPath}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.snapshotPath);
    // From here on the journal's lines are of an older generation: harmless if we crash
    // before they are gone.
    this.gen = gen;
    this.snapshotBytes = Buffer.byteLength(text);
    if (this.journalBytes > 0 || existsSync(this.journalPath)) ftruncateSync(this.journal(), 0);
    this.journalBytes = 0;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private journal(): number {
    if (this.fd === undefined) {
      mkdirSync(this.dir, { recursive: true });
      this.fd = openSync(this.journalPath, 'a');
    }
    return this.fd;
  }
}
