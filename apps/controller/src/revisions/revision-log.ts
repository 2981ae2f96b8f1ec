import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { DesiredStateService } from '../desired-state/desired-state.service.js';
import type { Change } from './changes.js';

/** Held from revision allocation to commit, so revisions become visible in order, gap-free. */
const REVISION_LOCK = 0x1a77_1ce1;
const RETRYABLE = new Set(['40001', '40P01']);

type RevisedTable = 'hosts' | 'networks' | 'instances' | 'routers';

/** What a unit of work tells the log while it runs inside one transaction. */
export class Tx {
  readonly changes: Change[] = [];
  readonly revised = new Map<RevisedTable, Set<string>>();
  /** Scratch space for the work (e.g. IPAM's allocation hints within a bulk). */
  readonly memo = new Map<string, unknown>();

  constructor(readonly manager: EntityManager) {}

  query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.manager.query(sql, params);
  }

  /** Records a change; `row` gets the new revision stamped on it at commit. */
  record(change: Change, row?: { table: RevisedTable; id: string }): void {
    this.changes.push(change);
    if (row) {
      let set = this.revised.get(row.table);
      if (!set) this.revised.set(row.table, (set = new Set()));
      set.add(row.id);
    }
  }
}

/**
 * The revision log: every committed change gets the next value of `revision_seq`, recorded
 * with the hosts whose desired state it changes. Mutations run concurrently; only the
 * tail — revision, engine planning, commit — is serialised (a transaction-scoped advisory
 * lock across replicas, a mutex within this process), which makes the log's order the
 * commit order.
 * What each revision changed per host is published by DesiredStateService.updates$.
 */
@Injectable()
export class RevisionLog {
  private readonly log = new Logger('revisions');

  constructor(
    private readonly ds: DataSource,
    private readonly desired: DesiredStateService,
  ) {}

  /**
   * Runs `work` in a transaction; if it recorded changes, commits them as one revision.
   * Returns the work's result — passed through `present`, which reads the response inside
   * the same transaction, so that an answer never needs a second connection after the
   * commit — and the revision (the current one when nothing changed).
   */
  async mutate<T, V = T>(
    work: (tx: Tx) => Promise<T>,
    present?: (m: EntityManager, result: T) => Promise<V>,
  ): Promise<{ result: V; revision: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(work, present);
      } catch (e) {
        const code = (e as { driverError?: { code?: string } }).driverError?.code;
        if (attempt < 4 && code && RETRYABLE.has(code)) {
          this.log.debug(`retrying after ${code} (attempt ${attempt})`);
          continue;
        }
        throw e;
      }
    }
  }

  private async attempt<T, V>(
    work: (tx: Tx) => Promise<T>,
    present: ((m: EntityManager, result: T) => Promise<V>) | undefined,
  ): Promise<{ result: V; revision: number }> {
    // A query runner rather than ds.transaction(): the answer is read on the same
    // connection right after COMMIT — outside the revision lock, yet without queueing
    // for a second pooled connection.
    const qr = this.ds.createQueryRunner();
    await qr.connect();
    let planned: number | undefined;
    try {
      await qr.startTransaction();
      let revision: number;
      let result: T;
      try {
        const tx = new Tx(qr.manager);
        result = await work(tx);
        if (tx.changes.length === 0) revision = this.desired.currentRevision;
        else {
          revision = await this.commitTail(qr.manager, tx, (r) => (planned = r));
        }
        await qr.commitTransaction();
      } catch (e) {
        if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
        throw e;
      }
      if (planned !== undefined) {
        this.desired.settle(planned, true);
        planned = undefined;
      }
      const view = present ? await present(qr.manager, result) : (result as unknown as V);
      return { result: view, revision };
    } catch (e) {
      if (planned !== undefined) this.desired.settle(planned, false);
      throw e;
    } finally {
      await qr.release();
    }
  }

  /**
   * Under the revision lock (held to COMMIT): draws the revision, has the engine plan it,
   * and writes what the revision changes. Two round trips.
   */
  private async commitTail(
    m: EntityManager,
    tx: Tx,
    onPlanned: (revision: number) => void,
  ): Promise<number> {
    // The lock first (the sub-select), then the revision and the latest committed one,
    // which tells the engine whether another replica committed meanwhile.
    const [{ r, last }] = await m.query<{ r: string; last: string | null }[]>(
      `SELECT nextval('revision_seq') AS r, (SELECT max(revision) FROM revisions) AS last
         FROM (SELECT pg_advisory_xact_lock($1)) AS locked`,
      [REVISION_LOCK],
    );
    const revision = Number(r);
    onPlanned(revision);
    const { hosts: updates } = await this.desired.plan(m, revision, tx.changes, Number(last ?? 0));
    const hosts = [...updates.keys()].sort();
    // Everything the revision writes: the log row, the hosts' desired revision, the
    // revision stamped on the changed rows, the notification.
    const stamps = [...tx.revised].map(
      ([table], k) => `, s${k} AS (UPDATE ${table} SET revision = $1 WHERE id = ANY($${k + 4}))`,
    );
    await m.query(
      `WITH rev AS (INSERT INTO revisions (revision, hosts, changes) VALUES ($1, $2, $3)),
            h AS (UPDATE hosts SET desired_revision = $1 WHERE id = ANY($2))${stamps.join('')}
       SELECT pg_notify('lattice_revisions', $1::text)`,
      [
        revision,
        hosts,
        JSON.stringify(tx.changes),
        ...[...tx.revised.values()].map((ids) => [...ids]),
      ],
    );
    return revision;
  }
}
