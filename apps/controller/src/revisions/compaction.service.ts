import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleDestroy,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { CONFIG, type Config } from '../config/config.js';

/**
 * Taken (transaction-scoped, try only) by each compaction statement's transaction: one
 * replica compacts at a time. Distinct from the migration lock (…ce0) and the revision
 * lock (…ce1), which compaction never takes: commits are never held up by it.
 */
export const COMPACTION_LOCK = 0x1a77_1ce2;
/** How often each replica tries to compact. */
export const COMPACTION_INTERVAL_MS = 60_000;
/** Rows deleted at most by one statement (one short transaction). */
export const COMPACTION_BATCH = 10_000;
/** Batches one pass runs at most: a large backlog is worked off over several intervals. */
export const COMPACTION_MAX_BATCHES = 50;
/** How long shutdown waits for a compaction statement under way. */
const STOP_WAIT_MS = 2_000;

/**
 * One batch: the oldest revisions that are at least `retention` behind the newest one,
 * cut at the first of them younger than the minimum age, so what is deleted is always a
 * prefix of the log and what remains is contiguous up to the newest revision (which is
 * never deleted: `retention` ≥ 1). Ages are the database's clock (`committed_at` is the
 * committing transaction's `now()`), so replicas' clocks do not matter. Every step is an
 * index range on the primary key.
 */
const DELETE_BATCH = `
  WITH head AS (
    SELECT revision, committed_at FROM revisions
     WHERE revision <= (SELECT max(revision) FROM revisions) - $1::bigint
     ORDER BY revision
     LIMIT $2
  ), young AS (
    SELECT min(revision) AS r FROM head
     WHERE committed_at > now() - $3::bigint * interval '1 millisecond'
  ), gone AS (
    DELETE FROM revisions r USING head h
     WHERE r.revision = h.revision AND h.revision < coalesce((SELECT y.r FROM young y), h.revision + 1)
    RETURNING r.revision
  )
  SELECT count(*)::int AS n, max(revision)::bigint AS last FROM gone`;

export interface CompactionStats {
  /** Revisions this process deleted since start. */
  readonly compacted: number;
  /** Compaction passes that failed (logged at warn). */
  readonly failures: number;
}

/**
 * Keeps the revision log bounded. Only other replicas catching up read old revisions
 * (agents resume from the in-memory diff history), and a replica that finds a gap
 * recomputes from the tables, so dropping old revisions costs at most one recompute on a
 * replica that was far behind. A revision is deleted once it is both older than the
 * newest `LATTICE_REVISION_RETENTION` revisions and older than
 * `LATTICE_REVISION_MIN_AGE_MS`, oldest first, in statements of at most
 * `COMPACTION_BATCH` rows, every `COMPACTION_INTERVAL_MS`, off the request path. Failures
 * (a database that is down) are logged and retried at the next interval.
 */
@Injectable()
export class CompactionService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger('revisions');
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private closed = false;
  private compacted = 0;
  private failures = 0;

  constructor(
    private readonly ds: DataSource,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), COMPACTION_INTERVAL_MS);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const running = this.running;
    if (!running) return;
    let wait: NodeJS.Timeout | undefined;
    await Promise.race([
      running.catch(() => undefined),
      new Promise((r) => (wait = setTimeout(r, STOP_WAIT_MS))),
    ]);
    clearTimeout(wait);
  }

  stats(): CompactionStats {
    return { compacted: this.compacted, failures: this.failures };
  }

  /**
   * One compaction pass: deletes batches until nothing is left to delete, another replica
   * is compacting, or `COMPACTION_MAX_BATCHES` ran; returns how many revisions it deleted. A pass already under
   * way is joined, not doubled. Rejects on a database error (the timer logs it).
   * `batchSize` is for tests.
   */
  compact(batchSize = COMPACTION_BATCH): Promise<number> {
    this.running ??= this.pass(batchSize).finally(() => (this.running = undefined));
    return this.running;
  }

  private async tick(): Promise<void> {
    try {
      await this.compact();
    } catch (e) {
      this.failures++;
      this.log.warn(
        `revision log not compacted (${e instanceof Error ? e.message : String(e)}); retrying in ${COMPACTION_INTERVAL_MS / 1000} s`,
      );
    }
  }

  private async pass(batchSize: number): Promise<number> {
    let total = 0;
    let last: number | undefined;
    for (let i = 0; i < COMPACTION_MAX_BATCHES && !this.closed; i++) {
      const r = await this.batch(batchSize);
      if (r === null) break; // another replica holds the compaction lock
      total += r.n;
      this.compacted += r.n;
      if (r.last !== null) last = r.last;
      if (r.n < batchSize) break;
    }
    if (total > 0) this.log.debug(`compacted ${total} revisions (up to revision ${last})`);
    return total;
  }

  /** One batch in a transaction of its own; null when another replica is compacting. */
  private batch(batchSize: number): Promise<{ n: number; last: number | null } | null> {
    return this.ds.transaction(async (m) => {
      const [{ ok }] = await m.query<{ ok: boolean }[]>(
        'SELECT pg_try_advisory_xact_lock($1) AS ok',
        [COMPACTION_LOCK],
      );
      if (!ok) return null;
      const [row] = await m.query<{ n: number; last: string | null }[]>(DELETE_BATCH, [
        this.config.revisionRetention,
        batchSize,
        this.config.revisionMinAgeMs,
      ]);
      return { n: row.n, last: row.last === null ? null : Number(row.last) };
    });
  }
}
