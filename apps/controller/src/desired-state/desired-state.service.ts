import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Subject } from 'rxjs';
import { DataSource, EntityManager, type QueryRunner } from 'typeorm';
import {
  DesiredStateEngine,
  diff,
  isEmptyDiff,
  type DesiredState,
  type EngineStats,
  type HostUpdate,
} from '../../../../libs/engine/src/index.js';
import type { Topology } from '../../../../libs/model/src/index.js';
import { isDatabaseDown } from '../common/errors.js';
import type { Change } from '../revisions/changes.js';
import { loadChangesSince, loadTopology } from './topology.repository.js';

/** A promise-chain mutex: one holder at a time, in arrival order. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** What one committed revision changed, per host. */
export interface RevisionUpdate {
  readonly revision: number;
  /** Hosts whose desired state changed, with the new state and the ordered diff to it. */
  readonly hosts: ReadonlyMap<string, HostUpdate>;
  /**
   * Hosts to bring to this state with a snapshot (their agents were told nothing of a
   * state that never committed). The maps are live: read them while handling the update.
   */
  readonly resync?: ReadonlyMap<string, DesiredState>;
  /** The revision's changes, when they are in memory (not after a recompute). */
  readonly changes?: readonly Change[];
}

interface Pending extends RevisionUpdate {
  readonly settled: Promise<boolean>;
  readonly settle: (committed: boolean) => void;
}

/**
 * Holds the desired-state engine in memory, mirrored from PostgreSQL, and publishes what
 * each committed revision changed (`updates$`, strictly in revision order) for fan-out.
 *
 * Changes reach the engine only through the revision log. `plan()` runs under the
 * revision lock just before a commit, so the hosts a revision affects are the engine's
 * exact answer; the engine then holds the revision as *pending* until the log settles it:
 * committed → published; failed → the engine is recomputed from the database. Anything
 * that reads or plans waits for a pending revision to settle first, so no one ever sees
 * a revision that did not commit. Revisions committed by other replicas are caught up
 * from the log (on the next plan or read, or when a notification says so).
 *
 * A mutex serialises engine access within this process; it is never held while waiting
 * for a row lock, so it cannot deadlock with the database.
 */
@Injectable()
export class DesiredStateService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger('desired-state');
  private engine: DesiredStateEngine | undefined;
  /** The last revision the engine holds (pending or committed). */
  private revision = 0;
  private pending: Pending | null = null;
  /** The engine may hold what never committed: recompute before anyone reads or plans. */
  private stale = false;
  private recoverTimer: NodeJS.Timeout | undefined;
  /** Hosts to resync with a snapshot at the next rebuild. */
  private readonly resyncHosts = new Set<string>();
  private readonly mutex = new Mutex();
  readonly updates$ = new Subject<RevisionUpdate>();

  /**
   * A connection of its own for reading the log and the topology while holding the
   * mutex: were it taken from the pool, a burst of requests holding every pooled
   * connection while they queue for the revision lock would wait on the mutex, and the
   * mutex holder on them.
   */
  private reader: QueryRunner | undefined;

  constructor(private readonly ds: DataSource) {}

  async onModuleDestroy(): Promise<void> {
    clearTimeout(this.recoverTimer);
    await this.reader?.release().catch(() => undefined);
  }

  /** Runs `fn` on the dedicated connection, replacing it once if it was lost. */
  private async withReader<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (!this.reader || this.reader.isReleased) {
        this.reader = this.ds.createQueryRunner();
        await this.reader.connect();
      }
      try {
        return await fn(this.reader.manager);
      } catch (e) {
        const lost = isDatabaseDown(e);
        await this.reader.release().catch(() => undefined);
        this.reader = undefined;
        if (!lost || attempt >= 2) throw e;
      }
    }
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.mutex.run(() => this.rebuild());
  }

  /** Hosts whose state a revision changed, summed over revisions since the engine was built. */
  private hostsChanged = 0;

  /** The engine's counters since it was last built (metrics), or null before the first build. */
  engineStats(): (EngineStats & { hostsChanged: number }) | null {
    return this.engine ? { ...this.engine.stats(), hostsChanged: this.hostsChanged } : null;
  }

  /** The latest committed revision this process has seen. */
  get currentRevision(): number {
    return this.pending ? this.pending.revision - 1 : this.revision;
  }

  /**
   * Called by the revision log under its lock, inside the committing transaction, with
   * the latest committed revision: brings the engine to `revision` with `changes` and
   * returns what changed per host. The log must call `settle(revision, …)` once the
   * transaction has ended.
   */
  plan(
    m: EntityManager,
    revision: number,
    changes: readonly Change[],
    lastCommitted: number,
  ): Promise<RevisionUpdate> {
    return this.mutex.run(async () => {
      await this.settlePending();
      // Only another replica's commits can put the log ahead of the engine; the caller
      // read `lastCommitted` under the revision lock, so it is exact.
      if (this.stale || lastCommitted !== this.revision) await this.catchUp(m, lastCommitted);
      if (this.revision !== lastCommitted) {
        throw new Error(`engine at revision ${this.revision}, log at ${lastCommitted}`);
      }
      const { hosts } = this.engine!.apply(changes);
      this.hostsChanged += hosts.size;
      let settle!: (ok: boolean) => void;
      const settled = new Promise<boolean>((r) => (settle = r));
      this.pending = { revision, hosts, changes, settled, settle };
      this.revision = revision;
      return { revision, hosts };
    });
  }

  /** The revision log's word on a planned revision: published if committed. */
  settle(revision: number, committed: boolean): void {
    if (this.pending?.revision !== revision) return;
    this.pending.settle(committed);
    this.mutex
      .run(() => this.settlePending())
      .catch((e: unknown) =>
        this.log.error(
          `settling revision ${revision}: ${e instanceof Error ? e.message : String(e)}`,
        ),
      );
  }

  /**
   * Runs `fn` with the engine at the latest revision this replica has published,
   * atomically with respect to `updates$`: no update is published while `fn` runs (its
   * awaits included). Reads no database: a reader waits at most for the planned revision
   * of a batch that is committing (one round trip), never for writers in a queue.
   * `fresh` first catches up with what other replicas committed (one query).
   */
  read<T>(
    fn: (view: {
      revision: number;
      stateOf: (hostId: string) => DesiredState;
      /** A snapshot of the engine's topology (O(size): for the trace, not hot paths). */
      topology: () => Topology;
    }) => T | Promise<T>,
    opts: { fresh?: boolean } = {},
  ): Promise<T> {
    return this.mutex.run(async () => {
      await this.settlePending();
      if (this.stale || opts.fresh) await this.withReader((m) => this.catchUp(m));
      const engine = this.engine!;
      return fn({
        revision: this.revision,
        stateOf: (id) => engine.stateOf(id),
        topology: () => engine.topology(),
      });
    });
  }

  /** Catches up with revisions other replicas committed (on their notification). */
  refresh(): Promise<void> {
    return this.read(() => undefined, { fresh: true });
  }

  private async settlePending(): Promise<void> {
    const p = this.pending;
    if (!p) return;
    const committed = await p.settled;
    if (this.pending !== p) return;
    this.pending = null;
    if (committed) {
      this.updates$.next({ revision: p.revision, hosts: p.hosts, changes: p.changes });
      return;
    }
    // The engine holds changes that never became visible, and the agents of p.hosts were
    // never told: recompute from the database and bring exactly those hosts to it with a
    // snapshot (the diff they would need is from a state nobody published).
    this.log.warn(`revision ${p.revision} did not commit: recomputing the desired state`);
    for (const h of p.hosts.keys()) this.resyncHosts.add(h);
    this.stale = true;
    this.revision = p.revision - 1;
    await this.recover();
  }

  /**
   * Rebuilds a stale engine; while the database is unreachable the engine stays stale
   * (reads and plans fail with the database's error, answered as 503) and is retried.
   */
  private async recover(): Promise<void> {
    try {
      await this.rebuild();
    } catch (e) {
      this.log.warn(
        `desired state not recomputed (${e instanceof Error ? e.message : String(e)}); retrying`,
      );
      clearTimeout(this.recoverTimer);
      this.recoverTimer = setTimeout(() => void this.mutex.run(() => this.recoverIfStale()), 1000);
      this.recoverTimer.unref();
    }
  }

  private async recoverIfStale(): Promise<void> {
    if (this.stale) await this.recover();
  }

  /**
   * Applies and publishes revisions committed elsewhere that the engine has not seen.
   * Revisions are numbered without gaps (each is the previous maximum plus one, drawn
   * under the revision lock); a gap means the engine missed something it cannot replay,
   * and it is recomputed.
   */
  private async catchUp(m: EntityManager, expect?: number): Promise<void> {
    if (!this.engine || this.stale) return this.rebuild();
    if (expect !== undefined && this.revision > expect) {
      this.log.warn(
        `engine at revision ${this.revision} is ahead of the log (${expect}): recomputing`,
      );
      return this.rebuild();
    }
    const rows = await loadChangesSince(m, this.revision);
    let next = this.revision;
    for (const r of rows) {
      if (r.revision !== next + 1) {
        this.log.warn(`revision log gap after ${next} (next is ${r.revision}): recomputing`);
        return this.rebuild();
      }
      next = r.revision;
    }
    if (expect !== undefined && next < expect) {
      this.log.warn(`revision ${expect} is not visible (read up to ${next}): recomputing`);
      return this.rebuild();
    }
    for (const { revision, changes } of rows) {
      const { hosts } = this.engine.apply(changes);
      this.hostsChanged += hosts.size;
      this.revision = revision;
      // Published even when no host changed: the event stream shows every revision.
      this.updates$.next({ revision, hosts, changes });
    }
  }

  /**
   * Full recompute from the database: at start, after a failed commit and on a gap in the
   * log. What differs from the previous engine is published, and the hosts whose agents
   * were never told the previous engine's state get a snapshot.
   */
  private async rebuild(): Promise<void> {
    const started = performance.now();
    const { topology, revision } = await this.withReader((m) => loadTopology(m));
    const before = this.engine;
    const engine = new DesiredStateEngine(topology);
    this.hostsChanged = 0;
    this.engine = engine;
    this.revision = revision;
    this.stale = false;
    clearTimeout(this.recoverTimer);
    this.log.log(
      `desired state of ${topology.hosts.size} hosts at revision ${revision} computed in ${Math.round(performance.now() - started)} ms`,
    );
    if (!before) return;
    const resync = new Map<string, DesiredState>();
    for (const id of this.resyncHosts) resync.set(id, engine.stateOf(id));
    this.resyncHosts.clear();
    const hosts = new Map<string, HostUpdate>();
    for (const id of new Set([...before.hostIds(), ...engine.hostIds()])) {
      if (resync.has(id)) continue;
      const d = diff(before.stateOf(id), engine.stateOf(id));
      if (!isEmptyDiff(d)) hosts.set(id, { state: engine.stateOf(id), diff: d });
    }
    if (hosts.size > 0 || resync.size > 0) this.updates$.next({ revision, hosts, resync });
  }
}
