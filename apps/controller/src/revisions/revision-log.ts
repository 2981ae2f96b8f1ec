import { Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { PoolClient, QueryResultRow } from 'pg';
import { DataSource, EntityManager, QueryFailedError, type QueryRunner } from 'typeorm';
import { DesiredStateService } from '../desired-state/desired-state.service.js';
import { isDatabaseDown } from '../common/errors.js';
import type { Change } from './changes.js';

/**
 * Held by the committing transaction from before its first statement to its COMMIT, on
 * every replica: revisions are numbered, planned and made visible strictly one batch after
 * another, in commit order.
 */
const REVISION_LOCK = 0x1a77_1ce1;
const RETRYABLE = new Set(['40001', '40P01']);
/** Requests committed together at most (a bulk create is one request). */
const MAX_BATCH = 256;
const MAX_ATTEMPTS = 4;

type RevisedTable = 'hosts' | 'networks' | 'instances' | 'routers' | 'policies' | 'floating_ips';

/**
 * What the requests of one batch share: rows they looked up (and locked) inside the batch's
 * transaction. An entry made by a request that fails is dropped with its savepoint (which
 * also released its row locks); any change to hosts, networks or routers drops them all.
 */
export class BatchCache {
  private readonly entries = new Map<string, Promise<unknown>>();

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get<T>(key: string, load: () => Promise<T>, tx: Tx): Promise<T> {
    let hit = this.entries.get(key) as Promise<T> | undefined;
    if (!hit) {
      hit = load();
      this.entries.set(key, hit);
      tx.cached.push(key);
      // a failed load is not kept (nor is its rejection left unobserved)
      hit.catch(() => this.entries.delete(key));
    }
    return hit;
  }

  /** A request ended: keep what it looked up if it succeeded and changed no referenced row. */
  settle(tx: Tx, ok: boolean): void {
    if (!ok) for (const k of tx.cached) this.entries.delete(k);
    else if (
      tx.changes.some((c) => !c.type.startsWith('instance.') && !c.type.startsWith('block.'))
    )
      this.entries.clear();
  }
}

/** What a unit of work tells the log while it runs inside the batch's transaction. */
export class Tx {
  readonly changes: Change[] = [];
  readonly revised = new Map<RevisedTable, Set<string>>();
  /** Keys this request added to the batch cache. */
  readonly cached: string[] = [];

  constructor(
    readonly manager: EntityManager,
    /** The revision the batch commits as, if anything in it changes. */
    readonly revision: number = 0,
    private readonly cache: BatchCache = new BatchCache(),
    /** The batch's connection: statements run on it as prepared statements. */
    private readonly client?: PoolClient,
    private readonly protector: () => Promise<void> = () => Promise.resolve(),
  ) {}

  /**
   * For works committed with `lazySavepoint`: sets this request's savepoint before its
   * first write that could fail after another of its writes succeeded. A lazy work that
   * writes only with one statement (which succeeds or raises as a whole) needs none.
   */
  protect(): Promise<void> {
    return this.protector();
  }

  /**
   * Runs a statement of the work and returns its rows (for UPDATE/DELETE … RETURNING too).
   * On the batch's connection, a statement is prepared once per connection and text: the
   * IPAM statements are CTEs whose planning costs more than their execution.
   */
  async query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const name = this.client ? preparedName(sql) : undefined;
    if (!name) {
      const qr = this.manager.queryRunner;
      if (qr) return ((await qr.query(sql, params, true)) as { records: T[] }).records;
      return this.manager.query(sql, params);
    }
    try {
      return (await this.client!.query<T & QueryResultRow>({ name, text: sql, values: params }))
        .rows;
    } catch (e) {
      // The shape the error filter knows (constraint violations → 409 …).
      throw new QueryFailedError(sql, params, e as Error);
    }
  }

  /**
   * A row looked up (and locked, when `load` locks it) once per batch: later requests of
   * the batch reuse it, since the lock is held to the batch's COMMIT.
   */
  lookup<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.cache.get(key, load, this);
  }

  /** Whether the batch already looked `key` up. */
  looked(key: string): boolean {
    return this.cache.has(key);
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

/** Distinct statement texts prepared at most (beyond, statements run unprepared). */
const MAX_PREPARED = 256;
const prepared = new Map<string, string>();

function preparedName(sql: string): string | undefined {
  let name = prepared.get(sql);
  if (name === undefined && prepared.size < MAX_PREPARED) {
    name = `lt_${createHash('sha1').update(sql).digest('hex').slice(0, 16)}`;
    prepared.set(sql, name);
  }
  return name;
}

type Work<T> = (tx: Tx) => Promise<T>;
type Present<T, V> = (m: EntityManager, result: T) => Promise<V>;

/** One mutating request waiting for (or inside) a batch. */
interface Request {
  readonly work: Work<unknown>;
  readonly present: Present<unknown, unknown> | undefined;
  readonly resolve: (r: { result: unknown; revision: number }) => void;
  readonly reject: (e: unknown) => void;
  attempts: number;
  /** Commit this request in a batch of its own (its last batch failed as a whole). */
  solo: boolean;
  /** The work sets its savepoint itself (`tx.protect()`), if it needs one. */
  readonly lazy: boolean;
}

/** A request whose work succeeded inside the batch's transaction. */
interface Done {
  readonly request: Request;
  readonly tx: Tx;
  readonly result: unknown;
}

/** An error raised by the database for a statement (which aborts the transaction). */
function isStatementError(e: unknown): boolean {
  return (
    e instanceof QueryFailedError ||
    typeof (e as { severity?: unknown } | null)?.severity === 'string'
  );
}

function sqlState(e: unknown): string | undefined {
  const x = e as { code?: unknown; driverError?: { code?: unknown } } | null;
  const code = x?.driverError?.code ?? x?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The revision log, with group commit. Every mutating request hands its work to
 * `mutate()`; the requests that wait while a batch commits form the next batch, which runs
 * in ONE transaction under the revision lock: each work inside a savepoint of its own (so
 * it succeeds or fails alone, all or nothing), then one engine pass over the changes of
 * every work that succeeded, one statement writing the revision, one COMMIT (one fsync).
 * The batch becomes revision `max(revision) + 1` (read after the lock is held, so another
 * replica's commit is never missed; numbering is gap-free); every request of it answers
 * with that revision. Answers (`present`) are read after the COMMIT on pooled connections,
 * outside the batch, so the next batch does not wait for them.
 * What each revision changed per host is published by DesiredStateService.updates$.
 */
@Injectable()
export class RevisionLog {
  private readonly log = new Logger('revisions');
  private readonly queue: Request[] = [];
  private draining = false;
  private batches = 0;
  private batchedRequests = 0;

  constructor(
    private readonly ds: DataSource,
    private readonly desired: DesiredStateService,
  ) {}

  /** Batches committed and requests in them, since start (for metrics). */
  stats(): { batches: number; requests: number } {
    return { batches: this.batches, requests: this.batchedRequests };
  }

  /**
   * Runs `work` inside the next batch's transaction; if it recorded changes, they become
   * visible with the batch's revision. Returns the work's result — passed through
   * `present`, which reads the response after the commit — and the revision (the current
   * one when the batch changed nothing).
   */
  mutate<T, V = T>(
    work: Work<T>,
    present?: Present<T, V>,
    opts: { lazySavepoint?: boolean } = {},
  ): Promise<{ result: V; revision: number }> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        work,
        present: present as Present<unknown, unknown> | undefined,
        resolve: resolve as Request['resolve'],
        reject,
        attempts: 0,
        solo: false,
        lazy: opts.lazySavepoint ?? false,
      });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.nextBatch();
        const { retry } = await this.commitBatch(batch);
        // Retried requests go first, so that they keep their place in arrival order.
        if (retry.length > 0) this.queue.unshift(...retry);
      }
    } finally {
      this.draining = false;
    }
  }

  /** The waiting requests up to the next one that must go alone (or that one alone). */
  private nextBatch(): Request[] {
    if (this.queue[0].solo) return this.queue.splice(0, 1);
    let n = 0;
    while (n < this.queue.length && n < MAX_BATCH && !this.queue[n].solo) n++;
    return this.queue.splice(0, n);
  }

  /**
   * Commits one batch and settles every request of it: resolved, rejected with its own
   * error, or — when the batch as a whole failed with a retryable error — returned to be
   * retried. A failure of the batch as a whole (its tail, COMMIT, the connection) fails
   * every request that had not failed on its own.
   */
  private async commitBatch(batch: Request[]): Promise<{ retry: Request[] }> {
    const qr = this.ds.createQueryRunner();
    let planned: number | undefined;
    const done: Done[] = [];
    const failed: { request: Request; error: unknown }[] = [];
    try {
      const client = (await qr.connect()) as PoolClient;
      await qr.startTransaction();
      // Two statements in one round trip: the second takes its snapshot after the lock is
      // granted, so it sees every revision committed before.
      const results = (await client.query(
        `SELECT pg_advisory_xact_lock(${REVISION_LOCK}); SELECT coalesce(max(revision), 0)::bigint AS last FROM revisions`,
      )) as unknown as { rows: { last: string }[] }[];
      const last = Number(results[1].rows[0].last);
      const t0 = performance.now();
      // A request alone in its batch needs no savepoint: its failure rolls back everything.
      const savepoint = batch.length === 1 ? null : { open: false };
      const cache = new BatchCache();
      for (const request of batch) {
        const outcome = await this.runWork(qr, client, request, savepoint, last + 1, cache);
        if (outcome.ok) done.push({ request, tx: outcome.tx, result: outcome.result });
        else failed.push({ request, error: outcome.error });
      }
      const changes = done.flatMap((d) => d.tx.changes);
      let revision = this.desired.currentRevision;
      if (done.length === 0) {
        await qr.rollbackTransaction();
      } else {
        if (changes.length > 0) {
          revision = last + 1;
          planned = revision;
          const t1 = performance.now();
          const { hosts } = await this.desired.plan(qr.manager, revision, changes, last);
          const t2 = performance.now();
          await this.writeRevision(
            new Tx(qr.manager, revision, cache, client),
            revision,
            [...hosts.keys()].sort(),
            changes,
            done,
          );
          const t3 = performance.now();
          await qr.commitTransaction();
          const t4 = performance.now();
          this.log.debug(
            `batch of ${batch.length}: ${changes.length} changes, ${hosts.size} hosts; works ${(t1 - t0).toFixed(1)} ms, plan ${(t2 - t1).toFixed(1)} ms, write ${(t3 - t2).toFixed(1)} ms, commit ${(t4 - t3).toFixed(1)} ms`,
          );
        } else await qr.commitTransaction();
      }
      if (planned !== undefined) {
        this.desired.settle(planned, true);
        planned = undefined;
      }
      this.batches++;
      this.batchedRequests += batch.length;
      for (const f of failed) f.request.reject(f.error);
      for (const d of done) void this.answer(d, revision);
      return { retry: [] };
    } catch (e) {
      if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
      if (planned !== undefined) this.desired.settle(planned, false);
      const own = new Map(failed.map((f) => [f.request, f.error]));
      const code = sqlState(e);
      const retryable = code !== undefined && RETRYABLE.has(code);
      // A batch that failed as a whole for a reason that one request may have caused (a
      // deferred constraint, a value the revision write refused) is taken apart: each
      // request is retried alone, so that only the one at fault fails. A lost database
      // fails them all.
      const split = !retryable && batch.length - own.size > 1 && !isDatabaseDown(e);
      const retry: Request[] = [];
      for (const r of batch) {
        if (own.has(r)) r.reject(own.get(r));
        else if (split) {
          r.solo = true;
          retry.push(r);
        } else if (retryable && ++r.attempts < MAX_ATTEMPTS) retry.push(r);
        else r.reject(e);
      }
      if (retry.length > 0) this.log.debug(`retrying ${retry.length} request(s) after ${code}`);
      return { retry };
    } finally {
      await qr.release();
    }
  }

  /**
   * Runs one request's work inside the batch: in a savepoint when the batch has others, so
   * that its failure rolls back only its own statements (retryable failures — serialisation,
   * deadlock — are retried in place). Alone in its batch, a retryable failure fails the
   * batch, which is then retried as a whole. `savepoint.open` says whether an earlier
   * request's savepoint is still set: it is released in the same round trip as this one is set.
   */
  private async runWork(
    qr: QueryRunner,
    client: PoolClient,
    request: Request,
    savepoint: { open: boolean } | null,
    revision: number,
    cache: BatchCache,
  ): Promise<{ ok: true; tx: Tx; result: unknown } | { ok: false; error: unknown }> {
    for (;;) {
      let isProtected = false;
      const protect = async () => {
        if (!savepoint || isProtected) return;
        await client.query(
          savepoint.open ? 'RELEASE SAVEPOINT work; SAVEPOINT work' : 'SAVEPOINT work',
        );
        savepoint.open = true;
        isProtected = true;
      };
      if (!request.lazy) await protect();
      const tx = new Tx(qr.manager, revision, cache, client, protect);
      try {
        const result = await request.work(tx);
        cache.settle(tx, true);
        return { ok: true, tx, result };
      } catch (error) {
        cache.settle(tx, false);
        const code = sqlState(error);
        const retryable = code !== undefined && RETRYABLE.has(code);
        if (!savepoint) {
          if (retryable) throw error;
          return { ok: false, error };
        }
        if (!isProtected) {
          // A lazy work that failed before protecting itself wrote nothing — unless a
          // statement of it failed, which aborted the transaction: the batch then fails as
          // a whole and is taken apart (each request retried alone).
          if (isStatementError(error)) throw error;
          return { ok: false, error };
        }
        // Back to the start of this request; the savepoint stays set (released by the next
        // request's, or by COMMIT).
        await client.query('ROLLBACK TO SAVEPOINT work');
        if (retryable && ++request.attempts < MAX_ATTEMPTS) {
          this.log.debug(`retrying a request after ${code}`);
          continue;
        }
        return { ok: false, error };
      }
    }
  }

  /**
   * Everything the revision writes, in one statement: the log row, the hosts' desired
   * revision, the revision stamped on the changed rows, the notification.
   */
  private async writeRevision(
    m: Tx,
    revision: number,
    hosts: string[],
    changes: Change[],
    done: readonly Done[],
  ): Promise<void> {
    const revised = new Map<RevisedTable, Set<string>>();
    for (const d of done) {
      for (const [table, ids] of d.tx.revised) {
        let set = revised.get(table);
        if (!set) revised.set(table, (set = new Set()));
        for (const id of ids) set.add(id);
      }
    }
    const stamps = [...revised].map(
      ([table], k) => `, s${k} AS (UPDATE ${table} SET revision = $1 WHERE id = ANY($${k + 4}))`,
    );
    await m.query(
      `WITH rev AS (INSERT INTO revisions (revision, hosts, changes) VALUES ($1, $2, $3)),
            h AS (UPDATE hosts SET desired_revision = $1 WHERE id = ANY($2))${stamps.join('')}
       SELECT pg_notify('lattice_revisions', $1::text)`,
      [revision, hosts, JSON.stringify(changes), ...[...revised.values()].map((ids) => [...ids])],
    );
  }

  /** Reads a committed request's answer (outside the batch) and resolves it. */
  private async answer(d: Done, revision: number): Promise<void> {
    try {
      const result = d.request.present
        ? await d.request.present(this.ds.manager, d.result)
        : d.result;
      d.request.resolve({ result, revision });
    } catch (e) {
      d.request.reject(e);
    }
  }
}
