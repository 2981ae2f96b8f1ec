import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Subject, type Subscription } from 'rxjs';
import { DataSource } from 'typeorm';
import type WebSocket from 'ws';
import { inApplyOrder } from '../../../../libs/engine/src/index.js';
import {
  CLOSE,
  boundReport,
  DiffHistory,
  encode,
  MAX_FRAME_BYTES,
  encodeInParts,
  parseAgentFrame,
  type AgentFrame,
  type ControllerFrame,
  type Hello,
  type ResourceError,
  type Unversioned,
} from '../../../../libs/protocol/src/index.js';
import { hashToken, tokensEqual } from '../auth/tokens.js';
import { isDatabaseDown } from '../common/errors.js';
import { isUuid } from '../common/lookup.js';
import { CONFIG, type Config } from '../config/config.js';
import {
  DesiredStateService,
  type RevisionUpdate,
} from '../desired-state/desired-state.service.js';
import type { Tx } from '../revisions/revision-log.js';
import { AgentMetrics } from './agent-metrics.js';

/**
 * Announced to every replica on commit (a rotation or a host delete, in its transaction):
 * the payload is the host id; each replica checks the sessions of that host (`verify`).
 */
export const AGENTS_CHANNEL = 'lattice_agents';

export async function notifyAgents(tx: Tx, hostId: string): Promise<void> {
  await tx.query(`SELECT pg_notify('${AGENTS_CHANNEL}', $1)`, [hostId]);
}

const BAD_FRAMES_BEFORE_CLOSE = 20;
const STATUS_FLUSH_MS = 100;
const REMOTE_POLL_MS = 100;
/** Every session's token is checked against the table this often (besides notifications). */
const VERIFY_MS = 10_000;
/** Revisions whose affected hosts are remembered for `?wait=applied`. */
const RECENT_REVISIONS = 4096;

interface Session {
  readonly hostId: string;
  readonly hostName: string;
  readonly socket: WebSocket;
  readonly agentVersion: string;
  /** The hash of the token it authenticated with: a rotation or a host delete ends it. */
  readonly tokenHash: string;
  /** The last revision sent to the agent (its desired revision as far as it knows). */
  sent: number;
  /** The last revision the agent reported applied. */
  applied: number;
  lastSeen: number;
  /** When each unacknowledged revision was sent, for the ack latency histogram. */
  readonly sentAt: Map<number, number>;
}

/** What the status writer persists for a host. */
interface HostStatus {
  connected: boolean;
  lastSeen: Date;
  version: string | null;
  applied: number;
  errors?: readonly ResourceError[];
  drift?: readonly ResourceError[];
}

interface Waiter {
  readonly revision: number;
  readonly pending: Set<string>;
  readonly resolve: () => void;
}

/** Live status of an agent connected to this controller. */
export interface LiveAgent {
  lastSeen: Date;
  version: string;
  applied: number;
}

/**
 * What `markStatus` recorded for a host (every connect, disconnect, ack, status, heartbeat
 * and drift report), for the event stream (`events/`), which forwards only what changed.
 */
export interface AgentEvent {
  readonly host: string;
  readonly name: string;
  readonly connected: boolean;
  readonly applied: number;
  readonly lastSeen: Date;
  readonly errors?: readonly ResourceError[];
  readonly drift?: readonly ResourceError[];
}

export interface WaitResult {
  applied: boolean;
  /** Hosts whose agents had not applied the revision when the wait ended. */
  lagging: { id: string; name: string; appliedRevision: number }[];
}

/**
 * The controller's side of the agent protocol: authenticates agents, brings each to its
 * host's current desired state (a diff from its applied revision when the recent history
 * allows it, a snapshot otherwise), then pushes each revision's diff to exactly the hosts
 * it changed, in revision order. Tracks what every agent applied, persists it, and
 * answers `?wait=applied`.
 */
@Injectable()
export class AgentSessions implements OnModuleInit, OnModuleDestroy {
  private readonly log = new Logger('agents');
  private readonly sessions = new Map<string, Session>();
  private readonly histories = new Map<string, DiffHistory>();
  private readonly dirty = new Map<string, HostStatus>();
  private readonly waiters = new Set<Waiter>();
  /** Recently published revisions → the hosts they changed (insertion = revision order). */
  private readonly recent = new Map<number, string[]>();
  /** Every status change of an agent of this replica (see AgentEvent); never waits. */
  readonly events$ = new Subject<AgentEvent>();
  private subscription: Subscription | undefined;
  private timers: NodeJS.Timeout[] = [];
  private flushing: Promise<void> = Promise.resolve();
  /** This database's id: an agent whose state came from elsewhere gets a snapshot. */
  private cluster = '';

  constructor(
    private readonly ds: DataSource,
    private readonly desired: DesiredStateService,
    private readonly metrics: AgentMetrics,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  async onModuleInit(): Promise<void> {
    const [cluster] = await this.ds.query<{ id: string }[]>('SELECT id FROM cluster');
    this.cluster = cluster.id;
    const rows = await this.ds.query<{ id: string; desired_revision: string }[]>(
      'SELECT id, desired_revision FROM hosts',
    );
    for (const r of rows) this.histories.set(r.id, new DiffHistory(Number(r.desired_revision)));
    this.subscription = this.desired.updates$.subscribe((u) => this.publish(u));
    this.timers.push(setInterval(() => this.sweep(), Math.max(50, this.config.agentTimeoutMs / 4)));
    this.timers.push(setInterval(() => void this.flush(), STATUS_FLUSH_MS));
    this.timers.push(setInterval(() => void this.pollRemote(), REMOTE_POLL_MS));
    this.timers.push(setInterval(() => void this.verify(), VERIFY_MS));
    for (const t of this.timers) t.unref();
  }

  async onModuleDestroy(): Promise<void> {
    this.subscription?.unsubscribe();
    for (const t of this.timers) clearInterval(t);
    for (const s of this.sessions.values()) {
      s.socket.close(CLOSE.GOING_AWAY, 'controller shutting down');
      this.markStatus(s, false);
    }
    this.sessions.clear();
    await this.flush();
  }

  /** Live status of a host's agent connected to this controller (fresher than the table). */
  live(hostId: string): LiveAgent | undefined {
    const s = this.sessions.get(hostId);
    return s && { lastSeen: new Date(s.lastSeen), version: s.agentVersion, applied: s.applied };
  }

  /**
   * Ends the sessions, on this replica, of hosts that were deleted or whose agent token
   * changed since the agent authenticated (`hostIds` absent: every session). Called on the
   * `lattice_agents` notification that a rotation or host delete sends on commit (every
   * replica listens), when the listener reconnects, and every VERIFY_MS.
   */
  async verify(hostIds?: readonly string[]): Promise<void> {
    const ids = (hostIds ?? [...this.sessions.keys()]).filter((id) => this.sessions.has(id));
    if (ids.length === 0) return;
    let rows: { id: string; agent_token_hash: string }[];
    try {
      rows = await this.ds.query('SELECT id, agent_token_hash FROM hosts WHERE id = ANY($1)', [
        ids,
      ]);
    } catch (e) {
      this.log.warn(`agent tokens not checked: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const hashes = new Map(rows.map((r) => [r.id, r.agent_token_hash]));
    for (const id of ids) {
      const s = this.sessions.get(id);
      if (!s) continue;
      const hash = hashes.get(id);
      if (hash !== undefined && tokensEqual(hash, s.tokenHash)) continue;
      const why = hash === undefined ? 'host deleted' : 'agent token revoked';
      this.log.log(`agent of ${s.hostName} disconnected: ${why}`);
      this.metrics.dropped.inc({ reason: 'revoked' });
      s.socket.close(CLOSE.POLICY, why);
    }
  }

  // ---- connections -------------------------------------------------------------------

  /** A new WebSocket: it must say hello first, within the hello timeout. */
  accept(socket: WebSocket): void {
    let session: Session | undefined;
    let bad = 0;
    let authenticating = false;
    const helloTimer = setTimeout(
      () => socket.close(CLOSE.HELLO_TIMEOUT, 'no hello'),
      this.config.helloTimeoutMs,
    );
    socket.on('error', (e) => this.log.debug(`agent socket error: ${e.message}`));
    socket.on('close', () => {
      clearTimeout(helloTimer);
      if (session && this.sessions.get(session.hostId) === session) {
        this.sessions.delete(session.hostId);
        this.markStatus(session, false);
        this.metrics.lag.remove({ host: session.hostName });
        this.metrics.connected.set(this.sessions.size);
        this.log.log(`agent of ${session.hostName} disconnected`);
      }
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      const parsed = parseAgentFrame(isBinary ? data : data.toString('utf8'));
      if (!session) {
        // Before authentication nothing is ever sent back but a close code.
        if (authenticating) return;
        if (!parsed.ok || parsed.frame.type !== 'hello') {
          clearTimeout(helloTimer);
          const version = !parsed.ok && parsed.version;
          socket.close(
            version ? CLOSE.VERSION : CLOSE.POLICY,
            version ? 'unsupported protocol version' : 'expected hello',
          );
          return;
        }
        authenticating = true;
        clearTimeout(helloTimer);
        this.hello(socket, parsed.frame).then(
          (s) => (session = s),
          (e: unknown) => {
            this.log.error(`hello failed: ${e instanceof Error ? e.message : String(e)}`);
            socket.close(1011, 'internal error');
          },
        );
        return;
      }
      if (!parsed.ok) {
        this.send(session, { type: 'error', code: 'bad_frame', message: parsed.error });
        if (++bad >= BAD_FRAMES_BEFORE_CLOSE) socket.close(CLOSE.POLICY, 'too many bad frames');
        return;
      }
      this.onFrame(session, parsed.frame);
    });
  }

  private async hello(socket: WebSocket, h: Hello): Promise<Session | undefined> {
    const [row] = await this.ds.query<{ id: string; name: string; agent_token_hash: string }[]>(
      `SELECT id, name, agent_token_hash FROM hosts WHERE ${isUuid(h.host) ? 'id' : 'name'} = $1`,
      [h.host],
    );
    if (!row || !tokensEqual(hashToken(h.token), row.agent_token_hash)) {
      socket.close(CLOSE.POLICY, 'invalid host or token');
      return undefined;
    }
    const existing = this.sessions.get(row.id);
    if (existing && (await this.alive(existing))) {
      socket.close(CLOSE.REPLACED, 'another agent is connected for this host');
      return undefined;
    }
    if (socket.readyState !== socket.OPEN) return undefined;
    // Atomically with respect to updates: read the state, register, send. A claim beyond
    // what this replica has seen may come from another one that is ahead: catch up first.
    const fresh = h.appliedRevision > this.desired.currentRevision;
    return this.desired.read(
      ({ revision, stateOf }) => {
        const stale = this.sessions.get(row.id);
        if (stale) {
          stale.socket.terminate();
          this.sessions.delete(row.id);
        }
        const history = this.history(row.id);
        const session: Session = {
          hostId: row.id,
          hostName: row.name,
          socket,
          agentVersion: h.agentVersion,
          tokenHash: row.agent_token_hash,
          sent: history.revision,
          applied: 0,
          lastSeen: Date.now(),
          sentAt: new Map(),
        };
        this.sessions.set(row.id, session);
        this.metrics.connected.set(this.sessions.size);
        // A revision only means something in the database that issued it, and the controller
        // believes only what it could have sent: no revision beyond the latest committed one.
        const ours = h.appliedRevision === 0 || h.cluster === this.cluster;
        const believed = ours && h.appliedRevision <= revision;
        if (ours && !believed) {
          this.log.warn(
            `agent of ${row.name} claims revision ${h.appliedRevision}, but the latest is ${revision}: not believed, resyncing it with a snapshot`,
          );
          this.metrics.dropped.inc({ reason: 'claim' });
        }
        if (believed) session.applied = h.appliedRevision;
        const resume = believed ? history.since(h.appliedRevision) : null;
        if (resume) {
          const to = Math.max(history.revision, h.appliedRevision);
          this.send(
            session,
            {
              type: 'diff',
              cluster: this.cluster,
              fromRevision: h.appliedRevision,
              toRevision: to,
              ...resume,
            },
            to,
          );
          this.metrics.resyncs.inc({ kind: 'diff' });
          session.sent = to;
        } else {
          this.send(
            session,
            {
              type: 'snapshot',
              cluster: this.cluster,
              revision: history.revision,
              resources: inApplyOrder(stateOf(row.id)),
            },
            history.revision,
          );
          this.metrics.resyncs.inc({ kind: 'snapshot' });
        }
        this.markStatus(session, true);
        this.log.log(
          `agent ${h.agentVersion} of ${row.name} connected at revision ${h.appliedRevision} (${resume ? 'diff' : 'snapshot'})`,
        );
        return session;
      },
      { fresh },
    );
  }

  /** True when a session answers a ping within a second (a half-open one does not). */
  private alive(s: Session): Promise<boolean> {
    if (s.socket.readyState !== s.socket.OPEN) return Promise.resolve(false);
    return new Promise((done) => {
      const timer = setTimeout(() => done(false), 1000);
      s.socket.once('pong', () => {
        clearTimeout(timer);
        done(true);
      });
      s.socket.ping();
    });
  }

  private onFrame(s: Session, f: AgentFrame): void {
    s.lastSeen = Date.now();
    switch (f.type) {
      case 'hello':
        this.send(s, { type: 'error', code: 'unexpected', message: 'already said hello' });
        return;
      case 'ack':
      case 'status': {
        if (f.revision > s.sent) {
          this.send(s, {
            type: 'error',
            code: 'bad_revision',
            message: `revision ${f.revision} was never sent (last sent ${s.sent})`,
          });
          return;
        }
        this.observeAck(s, f.revision);
        s.applied = f.revision;
        // Stored bounded whatever the agent sent (REPORT_LIMITS), with the known fields only.
        const errors = f.type === 'status' ? boundReport(f.errors, {}) : [];
        this.markStatus(s, true, {
          errors: errors.map(({ key, message }) => ({ key, message })),
        });
        this.onApplied(s.hostId, f.revision);
        this.updateLag(s);
        return;
      }
      case 'heartbeat':
        this.markStatus(s, true);
        return;
      case 'drift':
        this.metrics.drift.inc({ host: s.hostName }, f.items.length);
        this.markStatus(s, true, {
          drift: boundReport(f.items, { repaired: false }).map(({ key, message, repaired }) => ({
            key,
            message,
            repaired,
          })),
        });
        return;
    }
  }

  private observeAck(s: Session, revision: number): void {
    for (const [rev, at] of s.sentAt) {
      if (rev > revision) continue;
      this.metrics.ackLatency.observe((Date.now() - at) / 1000);
      s.sentAt.delete(rev);
    }
  }

  private send(s: Session, frame: Unversioned<ControllerFrame>, revision?: number): void {
    const texts = frame.type === 'error' ? [encode(frame)] : encodeInParts(frame, MAX_FRAME_BYTES);
    this.sendTexts(s, frame.type, texts, revision);
  }

  /**
   * Sends the frames of one message (several when it comes in parts). An agent that is not
   * reading has its frames queue up in the socket: when more than `agentQueueBytes` still
   * wait as a new message is to be sent, it is dropped (it resyncs when it comes back). The
   * queue is so bounded by that plus one message, and a slow agent slows no one down.
   */
  private sendTexts(
    s: Session,
    type: ControllerFrame['type'],
    texts: readonly string[],
    revision?: number,
  ): void {
    if (s.socket.readyState !== s.socket.OPEN) return;
    if (s.socket.bufferedAmount > this.config.agentQueueBytes) {
      this.log.warn(
        `agent of ${s.hostName} is not reading (${s.socket.bufferedAmount} bytes queued): disconnecting`,
      );
      this.metrics.dropped.inc({ reason: 'queue' });
      s.socket.terminate();
      return;
    }
    for (const text of texts) {
      s.socket.send(text);
      if (type === 'diff' || type === 'snapshot') {
        this.metrics.frames.inc({ type });
        this.metrics.bytes.inc({ type }, Buffer.byteLength(text));
      }
    }
    if (revision !== undefined) s.sentAt.set(revision, Date.now());
  }

  private history(hostId: string): DiffHistory {
    let h = this.histories.get(hostId);
    // A host first seen here had an empty state before its first revision.
    if (!h) this.histories.set(hostId, (h = new DiffHistory(0)));
    return h;
  }

  // ---- fan-out -----------------------------------------------------------------------

  /** One revision's per-host diffs, to exactly the hosts it changed. */
  private publish(u: RevisionUpdate): void {
    this.recent.set(u.revision, [...u.hosts.keys(), ...(u.resync?.keys() ?? [])]);
    for (const old of this.recent.keys()) {
      if (this.recent.size <= RECENT_REVISIONS) break;
      this.recent.delete(old);
    }
    for (const [hostId, state] of u.resync ?? []) {
      // The agent was told nothing of a state that never committed: start its history
      // over and bring it to this state with a snapshot.
      const history = new DiffHistory(u.revision);
      this.histories.set(hostId, history);
      const s = this.sessions.get(hostId);
      if (!s) continue;
      this.send(
        s,
        {
          type: 'snapshot',
          cluster: this.cluster,
          revision: u.revision,
          resources: inApplyOrder(state),
        },
        u.revision,
      );
      this.metrics.resyncs.inc({ kind: 'snapshot' });
      s.sent = u.revision;
      this.updateLag(s);
    }
    for (const [hostId, { diff }] of u.hosts) {
      const history = this.history(hostId);
      // One encoding per host and revision: sent as is, and its length bounds the history.
      const frame = {
        type: 'diff',
        cluster: this.cluster,
        fromRevision: history.revision,
        toRevision: u.revision,
        upserts: diff.upserts,
        deletes: diff.deletes,
      } as const;
      const text = encode(frame);
      history.record(u.revision, diff, text.length);
      const s = this.sessions.get(hostId);
      if (!s) continue;
      this.sendTexts(s, 'diff', encodeInParts(frame, MAX_FRAME_BYTES, text), u.revision);
      s.sent = u.revision;
      this.updateLag(s);
    }
  }

  // ---- status ------------------------------------------------------------------------

  private markStatus(
    s: Session,
    connected: boolean,
    extra: Pick<HostStatus, 'errors' | 'drift'> = {},
  ): void {
    const prev = this.dirty.get(s.hostId);
    this.dirty.set(s.hostId, {
      connected,
      lastSeen: new Date(s.lastSeen),
      version: s.agentVersion,
      applied: s.applied,
      errors: extra.errors ?? prev?.errors,
      drift: extra.drift ?? prev?.drift,
    });
    if (this.events$.observed)
      this.events$.next({
        host: s.hostId,
        name: s.hostName,
        connected,
        applied: s.applied,
        lastSeen: new Date(s.lastSeen),
        ...extra,
      });
  }

  /** Writes the buffered agent status of many hosts in one statement. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.dirty.size === 0) return;
      const batch = [...this.dirty.entries()];
      this.dirty.clear();
      try {
        // Rows locked by a committing batch are skipped (and kept for the next flush): the
        // status writer never waits for a writer, so it can never deadlock with one.
        const written = await this.ds.query<{ id: string }[]>(
          `WITH v AS (
             SELECT * FROM unnest($1::uuid[], $2::boolean[], $3::timestamptz[], $4::text[], $5::bigint[], $6::jsonb[], $7::jsonb[])
                    AS v(id, connected, last_seen, version, applied, errors, drift)),
           free AS (SELECT h.id FROM hosts h WHERE h.id IN (SELECT id FROM v) FOR NO KEY UPDATE SKIP LOCKED),
           upd AS (UPDATE hosts h SET agent_connected = v.connected, agent_last_seen = v.last_seen, agent_version = v.version,
                  applied_revision = v.applied,
                  agent_errors = coalesce(v.errors, h.agent_errors), agent_drift = coalesce(v.drift, h.agent_drift)
             FROM v WHERE h.id = v.id AND h.id IN (SELECT id FROM free)
           RETURNING h.id)
           SELECT id FROM upd`,
          [
            batch.map(([id]) => id),
            batch.map(([, s]) => s.connected),
            batch.map(([, s]) => s.lastSeen.toISOString()),
            batch.map(([, s]) => s.version),
            batch.map(([, s]) => s.applied),
            batch.map(([, s]) => (s.errors ? JSON.stringify(s.errors) : null)),
            batch.map(([, s]) => (s.drift ? JSON.stringify(s.drift) : null)),
          ],
        );
        const saved = new Set(written.map((r) => r.id));
        for (const [id, s] of batch)
          if (!saved.has(id) && !this.dirty.has(id)) this.dirty.set(id, s);
      } catch (e) {
        // Keep what was not written (unless newer news arrived meanwhile) and try again.
        for (const [id, s] of batch) if (!this.dirty.has(id)) this.dirty.set(id, s);
        this.log.warn(`agent status not saved: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
    return this.flushing;
  }

  /** Closes agents silent past the timeout. */
  private sweep(): void {
    const deadline = Date.now() - this.config.agentTimeoutMs;
    for (const s of this.sessions.values()) {
      if (s.lastSeen < deadline) {
        this.log.warn(
          `agent of ${s.hostName} silent for ${this.config.agentTimeoutMs} ms: disconnecting`,
        );
        s.socket.close(CLOSE.SILENT, 'heartbeat timeout');
        s.socket.terminate();
      }
    }
  }

  private updateLag(s: Session): void {
    this.metrics.lag.set(
      { host: s.hostName },
      Math.max(0, this.history(s.hostId).revision - s.applied),
    );
  }

  // ---- ?wait=applied -----------------------------------------------------------------

  private onApplied(hostId: string, revision: number): void {
    for (const w of this.waiters) {
      if (revision >= w.revision && w.pending.delete(hostId) && w.pending.size === 0) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  /** Hosts connected to another replica: their applied revision comes through the database. */
  private async pollRemote(): Promise<void> {
    const remote = new Set<string>();
    for (const w of this.waiters)
      for (const h of w.pending) if (!this.sessions.has(h)) remote.add(h);
    if (remote.size === 0) return;
    const rows = await this.ds
      .query<{ id: string; applied_revision: string }[]>(
        'SELECT id, applied_revision FROM hosts WHERE id = ANY($1)',
        [[...remote]],
      )
      .catch(() => []);
    for (const r of rows) this.onApplied(r.id, Number(r.applied_revision));
  }

  /**
   * Resolves when every connected agent of a host that `revision` changed has applied it,
   * or after `timeoutMs` with the hosts still lagging.
   */
  async waitApplied(revision: number, timeoutMs: number): Promise<WaitResult> {
    type Row = {
      id: string;
      name: string;
      agent_connected: boolean;
      agent_last_seen: Date | null;
      applied_revision: string;
    };
    const known = this.recent.get(revision);
    let rows: Row[];
    if (known) {
      // Published here: the hosts are known; only those without an agent on this replica
      // are looked up (their agent may be connected to another one).
      const local: Row[] = [];
      const elsewhere: string[] = [];
      for (const id of known) {
        const s = this.sessions.get(id);
        if (s)
          local.push({
            id,
            name: s.hostName,
            agent_connected: true,
            agent_last_seen: new Date(s.lastSeen),
            applied_revision: String(s.applied),
          });
        else elsewhere.push(id);
      }
      rows = local;
      if (elsewhere.length > 0) {
        const read = await this.ds
          .query<Row[]>(
            `SELECT id, name, agent_connected, agent_last_seen, applied_revision FROM hosts WHERE id = ANY($1)`,
            [elsewhere],
          )
          .catch((e: unknown) => {
            if (!isDatabaseDown(e)) throw e;
            // The change is committed: hosts whose state cannot be read now are reported
            // as not known to have applied it (a 504), never as an error of the write.
            const now = new Date();
            return elsewhere.map((id) => ({
              id,
              name: id,
              agent_connected: true,
              agent_last_seen: now,
              applied_revision: '0',
            }));
          });
        rows = rows.concat(read);
      }
    } else {
      rows = await this.ds.query<Row[]>(
        `SELECT h.id, h.name, h.agent_connected, h.agent_last_seen, h.applied_revision
           FROM revisions r JOIN hosts h ON h.id = ANY(r.hosts) WHERE r.revision = $1`,
        [revision],
      );
    }
    const fresh = Date.now() - this.config.agentTimeoutMs;
    const connected = rows.filter(
      (r) =>
        this.sessions.has(r.id) ||
        (r.agent_connected && r.agent_last_seen !== null && r.agent_last_seen.getTime() > fresh),
    );
    const applied = (r: (typeof rows)[number]) =>
      this.sessions.get(r.id)?.applied ?? Number(r.applied_revision);
    const pending = new Set(connected.filter((r) => applied(r) < revision).map((r) => r.id));
    if (pending.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      let waiter: Waiter | undefined;
      await new Promise<void>((resolve) => {
        waiter = { revision, pending, resolve };
        this.waiters.add(waiter);
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      if (waiter) this.waiters.delete(waiter);
    }
    const lagging = connected
      .filter((r) => pending.has(r.id))
      .map((r) => ({
        id: r.id,
        name: r.name,
        appliedRevision: this.sessions.get(r.id)?.applied ?? Number(r.applied_revision),
      }));
    return { applied: lagging.length === 0, lagging };
  }
}
