import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import {
  DesiredStateEngine,
  inApplyOrder,
  type HostUpdate,
  type Resource,
} from '../../../../libs/engine/src/index.js';
import { findByIdOrName } from '../common/lookup.js';
import { HostEntity } from '../database/entities.js';
import type { Change } from '../revisions/changes.js';
import { loadChangesSince, loadTopology } from './topology.repository.js';

/** A promise-chain mutex: one holder at a time, in arrival order. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => next);
    await prev;
    return release;
  }
}

export interface Plan {
  /** Hosts whose desired state changes, with their new state and ordered diff. */
  readonly updates: ReadonlyMap<string, HostUpdate>;
}

/**
 * Holds the desired-state engine in memory, mirrored from PostgreSQL. Changes reach it
 * only through the revision log, in revision order: `plan()` runs under the revision lock
 * just before a commit (catching up first with revisions other replicas committed), so
 * the hosts a revision affects are the engine's exact answer.
 *
 * The engine takes a transaction's changes before that transaction commits. Commits are
 * serialised by the revision lock, so when the next planner runs, the previous planned
 * transaction has ended one way or the other: if its revision is not in the log, it
 * failed, and the engine is rebuilt from the database first. Within this process a mutex
 * keeps planners and readers from interleaving their awaits; it is never held while
 * waiting for a row lock, so it cannot deadlock with the database.
 */
@Injectable()
export class DesiredStateService implements OnApplicationBootstrap {
  private readonly log = new Logger('desired-state');
  private engine!: DesiredStateEngine;
  /** The revision the engine reflects. */
  private revision = 0;
  /** A planned revision whose commit has not been seen yet. */
  private pending: number | null = null;
  private readonly mutex = new Mutex();

  constructor(private readonly ds: DataSource) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.rebuild();
  }

  get currentRevision(): number {
    return this.revision;
  }

  /** Full recompute from the database: at start, and after a failed commit. */
  private async rebuild(): Promise<void> {
    const started = performance.now();
    const { topology, revision } = await loadTopology(this.ds.manager);
    this.engine = new DesiredStateEngine(topology);
    this.revision = revision;
    this.pending = null;
    this.log.log(
      `desired state of ${topology.hosts.size} hosts at revision ${revision} computed in ${Math.round(performance.now() - started)} ms`,
    );
  }

  /**
   * Settles the previous planned revision, then applies revisions committed elsewhere
   * (another replica) that the engine has not seen.
   */
  private async catchUp(m: EntityManager): Promise<void> {
    if (this.pending !== null) {
      const found = await m.query<unknown[]>('SELECT 1 FROM revisions WHERE revision = $1', [
        this.pending,
      ]);
      if (found.length === 0) {
        this.log.warn(`revision ${this.pending} did not commit: recomputing the desired state`);
        await this.rebuild();
      }
      this.pending = null;
    }
    for (const { revision, changes } of await loadChangesSince(m, this.revision)) {
      this.engine.apply(changes);
      this.revision = revision;
    }
  }

  /** Marks a planned revision as committed (called after the commit returned). */
  committed(revision: number): void {
    if (this.pending === revision) this.pending = null;
  }

  /**
   * Called by the revision log under its lock, inside the committing transaction: brings
   * the engine to `revision` with `changes` and returns what changed per host.
   */
  async plan(m: EntityManager, revision: number, changes: readonly Change[]): Promise<Plan> {
    const release = await this.mutex.lock();
    try {
      await this.catchUp(m);
      const update = this.engine.apply(changes);
      this.revision = revision;
      this.pending = revision;
      return { updates: update.hosts };
    } finally {
      release();
    }
  }

  /** The current desired state of a host, in apply order, at the latest revision seen. */
  async hostState(
    idOrName: string,
  ): Promise<{ host: HostEntity; revision: number; resources: Resource[] }> {
    const host = await findByIdOrName(this.ds.manager, HostEntity, 'host', idOrName);
    const release = await this.mutex.lock();
    try {
      await this.catchUp(this.ds.manager);
      return {
        host,
        revision: this.revision,
        resources: inApplyOrder(this.engine.stateOf(host.id)),
      };
    } finally {
      release();
    }
  }
}
