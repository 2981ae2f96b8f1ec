import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Subject } from 'rxjs';
import { DataSource, EntityManager, type QueryRunner } from 'typeorm';
import {
  DesiredStateEngine,
  diff,
  isEmptyDiff,
  type DesiredState,
  type HostUpdate,
} from '../../../../libs/engine/src/index.js';
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
        const lost =
          /Connection terminated|ECONNRESET|ECONNREFUSED|not queryable|Client has encountered a connection error/i.test(
            (e as Error)?.message ?? '',
          );
        await this.reader.release().catch(() => undefined);
        this.reader = undefined;
        if (!lost || attempt >= 2) throw e;
      }
    }
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.mutex.run(() => this.rebuild());
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
      // Only another replica's commits can put the log ahead of the engine.
      if (lastCommitted > this.revision) await this.catchUp(m);
      const { hosts } = this.engine!.apply(changes);
      let settle!: (ok: boolean) => void;
      const settled = new Promise<boolean>((r) => (settle = r));
      this.pending = { revision, hosts, settled, settle };
      this.revision = revision;
      return { revision, hosts };
    });
  }

  /** The revision log's word on a planned revision: published if committed. */
  settle(revision: number, committed: boolean): void {
    if (this.pending?.revision !== revision) return;
    this.pending.settle(committed);
    void this.mutex.run(() => this.settlePending());
  }

  /**
   * Runs `fn` with the engine at the latest committed revision, atomically with respect
   * to `updates$`: no update is published while `fn` runs (its awaits included).
   */
  read<T>(
    fn: (view: { revision: number; stateOf: (hostId: string) => DesiredState }) => T | Promise<T>,
  ): Promise<T> {
    return this.mutex.run(async () => {
      await this.settlePending();
      await this.withReader((m) => this.catchUp(m));
      const engine = this.engine!;
      return fn({ revision: this.revision, stateOf: (id) => engine.stateOf(id) });
    });
  }

  /** Catches up with revisions other replicas committed (on their notification). */
  refresh(): Promise<void> {
    return this.read(() => undefined);
  }

  private async settlePending(): Promise<void> {
    const p = this.pending;
    if (!p) return;
    const committed = await p.settled;
    if (this.pending !== p) return;
    this.pending = null;
    if (committed) this.updates$.next({ revision: p.revision, hosts: p.hosts });
    else {
      this.log.warn(`revision ${p.revision} did not commit: recomputing the desired state`);
      await this.rebuild();
    }
  }

  /** Applies and publishes revisions committed elsewhere that the engine has not seen. */
  private async catchUp(m: EntityManager): Promise<void> {
    if (!this.engine) return this.rebuild();
    for (const { revision, changes } of await loadChangesSince(m, this.revision)) {
      const { hosts } = this.engine.apply(changes);
      this.revision = revision;
      if (hosts.size > 0) this.updates$.next({ revision, hosts });
    }
  }

  /**
   * Full recompute from the database: at start, and after a failed commit. What differs
   * from the previous engine is published, so that no host misses a change.
   */
  private async rebuild(): Promise<void> {
    const started = performance.now();
    const { topology, revision } = await this.withReader((m) => loadTopology(m));
    const before = this.engine;
    const engine = new DesiredStateEngine(topology);
    this.engine = engine;
    this.revision = revision;
    this.log.log(
      `desired state of ${topology.hosts.size} hosts at revision ${revision} computed in ${Math.round(performance.now() - started)} ms`,
    );
    if (!before) return;
    const hosts = new Map<string, HostUpdate>();
    for (const id of new Set([...before.hostIds(), ...engine.hostIds()])) {
      const d = diff(before.stateOf(id), engine.stateOf(id));
      if (!isEmptyDiff(d)) hosts.set(id, { state: engine.stateOf(id), diff: d });
    }
    if (hosts.size > 0) this.updates$.next({ revision, hosts });
  }
}
