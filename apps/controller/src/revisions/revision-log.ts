import { Injectable, Logger } from '@nestjs/common';
import { Subject } from 'rxjs';
import { DataSource, EntityManager } from 'typeorm';
import type { Change, CommittedRevision } from './changes.js';

/** Held from revision allocation to commit, so revisions become visible in order, gap-free. */
const REVISION_LOCK = 0x1a77_1ce1;
const RETRYABLE = new Set(['40001', '40P01']);

type RevisedTable = 'hosts' | 'networks' | 'instances' | 'routers';

/** What a unit of work tells the log while it runs inside one transaction. */
export class Tx {
  readonly changes: Change[] = [];
  readonly hosts = new Set<string>();
  readonly networks = new Set<string>();
  readonly revised = new Map<RevisedTable, Set<string>>();
  /** Scratch space for the work (e.g. IPAM's allocation hints within a bulk). */
  readonly memo = new Map<string, unknown>();

  constructor(readonly manager: EntityManager) {}

  query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.manager.query(sql, params);
  }

  /** Records a change; `rows` get the new revision stamped on them at commit. */
  record(change: Change, rows?: { table: RevisedTable; id: string }): void {
    this.changes.push(change);
    if (rows) {
      let set = this.revised.get(rows.table);
      if (!set) this.revised.set(rows.table, (set = new Set()));
      set.add(rows.id);
    }
  }

  /** Hosts whose desired state this change may alter. */
  touchHosts(...ids: string[]): void {
    for (const id of ids) this.hosts.add(id);
  }

  /** Every host carrying these networks (or networks routed with them) is affected. */
  touchNetworks(...ids: string[]): void {
    for (const id of ids) this.networks.add(id);
  }
}

/**
 * The revision log: every committed change gets the next value of `revision_seq`, recorded
 * with the hosts it affects. Mutations run concurrently; only allocation and commit are
 * serialised (a transaction-scoped advisory lock), which makes the log's order the commit
 * order. Committed revisions are announced on `committed$` for fan-out.
 */
@Injectable()
export class RevisionLog {
  private readonly log = new Logger('revisions');
  readonly committed$ = new Subject<CommittedRevision>();

  constructor(private readonly ds: DataSource) {}

  async current(): Promise<number> {
    const [row] = await this.ds.query<{ r: string | null }[]>(
      'SELECT max(revision) AS r FROM revisions',
    );
    return Number(row?.r ?? 0);
  }

  /**
   * Runs `work` in a transaction; if it recorded changes, commits them as one revision.
   * Returns the work's result and the revision (the current one when nothing changed).
   */
  async mutate<T>(work: (tx: Tx) => Promise<T>): Promise<{ result: T; revision: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(work);
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

  private async attempt<T>(work: (tx: Tx) => Promise<T>): Promise<{ result: T; revision: number }> {
    let committed: CommittedRevision | undefined;
    const out = await this.ds.transaction(async (manager) => {
      const tx = new Tx(manager);
      const result = await work(tx);
      if (tx.changes.length === 0) {
        const [row] = await manager.query<{ r: string | null }[]>(
          'SELECT max(revision) AS r FROM revisions',
        );
        return { result, revision: Number(row?.r ?? 0) };
      }
      await manager.query('SELECT pg_advisory_xact_lock($1)', [REVISION_LOCK]);
      const [{ r }] = await manager.query<{ r: string }[]>(`SELECT nextval('revision_seq') AS r`);
      const revision = Number(r);
      const hosts = await this.affectedHosts(tx);
      await manager.query('INSERT INTO revisions (revision, hosts, changes) VALUES ($1, $2, $3)', [
        revision,
        hosts,
        JSON.stringify(tx.changes),
      ]);
      if (hosts.length > 0) {
        await manager.query('UPDATE hosts SET desired_revision = $1 WHERE id = ANY($2)', [
          revision,
          hosts,
        ]);
      }
      for (const [table, ids] of tx.revised) {
        await manager.query(`UPDATE ${table} SET revision = $1 WHERE id = ANY($2)`, [
          revision,
          [...ids],
        ]);
      }
      committed = { revision, hosts, changes: tx.changes };
      return { result, revision };
    });
    if (committed) this.committed$.next(committed);
    return out;
  }

  /**
   * Hosts named by the work, plus every host with instances of a touched network or of a
   * network sharing a router with one. A superset of the hosts whose state changes; the
   * desired-state engine narrows it.
   */
  private async affectedHosts(tx: Tx): Promise<string[]> {
    const hosts = new Set(tx.hosts);
    if (tx.networks.size > 0) {
      const rows = await tx.query<{ host_id: string }>(
        `WITH nets AS (
           SELECT unnest($1::uuid[]) AS id
           UNION
           SELECT b.network_id FROM router_networks a JOIN router_networks b USING (router_id)
            WHERE a.network_id = ANY($1::uuid[]))
         SELECT DISTINCT host_id FROM instances WHERE network_id IN (SELECT id FROM nets)`,
        [[...tx.networks]],
      );
      for (const r of rows) hosts.add(r.host_id);
    }
    // A host deleted in this transaction is no longer there to be updated.
    return [...hosts].sort();
  }
}
