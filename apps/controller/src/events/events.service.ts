import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import type { Subscription } from 'rxjs';
import { DataSource } from 'typeorm';
import type WebSocket from 'ws';
import { AgentSessions, type AgentEvent } from '../agents/agent-sessions.service.js';
import { API_TOKENS, type ApiTokens } from '../auth/auth.guard.js';
import { tokensEqual } from '../auth/tokens.js';
import { HostEntity } from '../database/entities.js';
import {
  DesiredStateService,
  type RevisionUpdate,
} from '../desired-state/desired-state.service.js';
import { hostView } from '../hosts/hosts.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { Change } from '../revisions/changes.js';

/** The first message must arrive within this long. */
export const AUTH_TIMEOUT_MS = 5000;
/** A subscriber with more than this waiting in its socket is dropped (close 4008). */
export const SUBSCRIBER_QUEUE_BYTES = 1 << 20;
/** `revision` events kept for resume, bounded in number and in encoded bytes. */
export const RING_EVENTS = 1024;
export const RING_BYTES = 16 << 20;
/** Changes listed per `revision` event; the rest are counted in `omitted`. */
export const MAX_CHANGES = 1000;
/** Revisions whose convergence is tracked at once, and for how long at most. */
const MAX_TRACKED = 1024;
const TRACK_MS = 10 * 60_000;
/** A dropped subscriber that does not finish the close handshake is cut after this. */
const DROP_GRACE_MS = 10_000;

export const CLOSE_TOO_SLOW = 4008;
const CLOSE_POLICY = 1008;

/** One entry of a `revision` event's `changes`. */
export interface ChangeSummary {
  type: Change['type'];
  id: string;
  name?: string;
  /** instance.upsert: its network and host; instance.move, block.*: the host. */
  network?: string;
  host?: string;
  ip?: string;
  model?: string;
  /** floatingip.upsert: the instance it is bound to. */
  instance?: string;
}

export function summarizeChange(c: Change): ChangeSummary {
  switch (c.type) {
    case 'host.upsert':
      return { type: c.type, id: c.host.id, name: c.host.name };
    case 'network.upsert':
      return { type: c.type, id: c.network.id, name: c.network.name, model: c.network.model };
    case 'instance.upsert':
      return {
        type: c.type,
        id: c.instance.id,
        name: c.instance.name,
        network: c.instance.networkId,
        host: c.instance.hostId,
        ip: c.instance.ip,
      };
    case 'instance.move':
      return { type: c.type, id: c.id, host: c.hostId };
    case 'block.upsert':
      return { type: c.type, id: c.block.cidr, network: c.block.networkId, host: c.block.hostId };
    case 'block.delete':
      return { type: c.type, id: c.cidr };
    case 'router.upsert':
      return { type: c.type, id: c.router.id, name: c.router.name };
    case 'policy.upsert':
      return { type: c.type, id: c.policy.id, name: c.policy.name };
    case 'floatingip.upsert':
      return {
        type: c.type,
        id: c.floatingIp.id,
        name: c.floatingIp.address,
        ...(c.floatingIp.instanceId === null ? {} : { instance: c.floatingIp.instanceId }),
      };
    case 'floatingip.delete':
    case 'policy.delete':
    case 'host.delete':
    case 'network.delete':
    case 'instance.delete':
    case 'router.delete':
      return { type: c.type, id: c.id };
  }
}

/** The `revision` event of one revision, encoded. */
function revisionText(
  revision: number,
  at: Date,
  hosts: readonly string[],
  changes: readonly Change[],
  incomplete = false,
): string {
  return JSON.stringify({
    type: 'revision',
    revision,
    at: at.toISOString(),
    hosts,
    changes: changes.slice(0, MAX_CHANGES).map(summarizeChange),
    ...(changes.length > MAX_CHANGES ? { omitted: changes.length - MAX_CHANGES } : {}),
    ...(incomplete ? { incomplete: true } : {}),
  });
}

interface Subscriber {
  readonly socket: WebSocket;
  /** Texts broadcast while its summary is being read; null once it is live. */
  backlog: string[] | null;
}

/** A place in the ordered outbox: ready text, or revisions whose changes are being read. */
type Item =
  | { kind: 'text'; text: string }
  | {
      kind: 'revisions';
      /** Revisions (from, to]: the published one and any not published before it. */
      from: number;
      to: number;
      hosts: string[];
      at: Date;
      loaded?: { revision: number; text: string }[];
    };

interface Tracker {
  readonly revision: number;
  readonly started: number;
  readonly pending: Set<string>;
  /** Agents that applied it (one that disconnects first is no longer waited for). */
  applied: number;
}

interface LastAgent {
  connected: boolean;
  applied: number;
  errors?: string;
}

/**
 * The live event stream (`/events`, see events.gateway.ts): authenticates a subscriber,
 * sends it a summary, then every committed revision (in order, other replicas' included),
 * agent connection and applied-revision changes, errors, drift and convergence.
 *
 * The controller never waits for a subscriber: every event is encoded once and queued on
 * each socket; a subscriber with more than SUBSCRIBER_QUEUE_BYTES waiting is dropped.
 * Events are emitted through one ordered outbox, so a revision's event precedes the agent
 * and convergence events that follow it. A revision's changes come with its update; only
 * revisions not published before it (after a recompute) are read from the `revisions`
 * table, one query for all revisions waiting. Agent and convergence events, which are not
 * kept for resuming, are not even encoded while nobody subscribes.
 */
@Injectable()
export class EventsService implements OnModuleInit, OnModuleDestroy {
  private readonly log = new Logger('events');
  private readonly subscribers = new Set<Subscriber>();
  private readonly outbox: Item[] = [];
  private loading = false;
  /** The last revision queued in the outbox (undefined until the first update). */
  private queued: number | undefined;
  /** The last revision whose event was broadcast. */
  private emitted: number | undefined;
  private readonly ring: { revision: number; text: string }[] = [];
  private ringBytes = 0;
  private readonly trackers = new Map<number, Tracker>();
  private readonly agents = new Map<string, LastAgent>();
  private readonly subs: Subscription[] = [];
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly gauge: Gauge;
  private readonly droppedTotal: Counter;

  constructor(
    private readonly ds: DataSource,
    private readonly desired: DesiredStateService,
    private readonly sessions: AgentSessions,
    @Inject(API_TOKENS) private readonly tokens: ApiTokens,
    metrics: MetricsService,
  ) {
    const registers = [metrics.registry];
    this.gauge = new Gauge({
      name: 'lattice_event_subscribers',
      help: 'Subscribers of the event stream (/events) on this controller',
      registers,
    });
    this.droppedTotal = new Counter({
      name: 'lattice_event_subscribers_dropped_total',
      help: 'Event stream subscribers dropped for not reading (close 4008)',
      registers,
    });
  }

  onModuleInit(): void {
    this.subs.push(this.desired.updates$.subscribe((u) => this.onRevision(u)));
    this.subs.push(this.sessions.events$.subscribe((e) => this.onAgent(e)));
    this.sweepTimer = setInterval(() => this.sweepTrackers(), 10_000);
    this.sweepTimer.unref();
  }

  onModuleDestroy(): void {
    for (const s of this.subs) s.unsubscribe();
    clearInterval(this.sweepTimer);
    for (const sub of this.subscribers) sub.socket.close(1001, 'controller shutting down');
    this.subscribers.clear();
    this.gauge.set(0);
  }

  // ---- subscribers -------------------------------------------------------------------

  accept(socket: WebSocket): void {
    let state: 'auth' | 'reading' | 'live' = 'auth';
    const timer = setTimeout(() => socket.close(CLOSE_POLICY, 'auth timeout'), AUTH_TIMEOUT_MS);
    let sub: Subscriber | undefined;
    socket.on('error', (e) => this.log.debug(`subscriber socket error: ${e.message}`));
    socket.on('close', () => {
      clearTimeout(timer);
      if (sub && this.subscribers.delete(sub)) this.gauge.set(this.subscribers.size);
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (state !== 'auth') return; // nothing else is expected from a subscriber
      clearTimeout(timer);
      let msg: { type?: unknown; token?: unknown; since?: unknown } | undefined;
      try {
        msg = isBinary ? undefined : (JSON.parse(data.toString('utf8')) as typeof msg);
      } catch {
        msg = undefined;
      }
      if (!msg || typeof msg !== 'object' || msg.type !== 'auth') {
        socket.close(CLOSE_POLICY, 'expected auth');
        return;
      }
      if (typeof msg.token !== 'string' || !this.validToken(msg.token)) {
        socket.close(CLOSE_POLICY, 'invalid token');
        return;
      }
      const since =
        typeof msg.since === 'number' && Number.isSafeInteger(msg.since) && msg.since >= 0
          ? msg.since
          : undefined;
      state = 'reading';
      sub = { socket, backlog: [] };
      this.subscribers.add(sub);
      this.gauge.set(this.subscribers.size);
      const s = sub;
      this.start(s, since).then(
        () => (state = 'live'),
        (e: unknown) => {
          this.log.warn(`event summary failed: ${e instanceof Error ? e.message : String(e)}`);
          socket.close(1011, 'summary unavailable');
        },
      );
    });
  }

  private validToken(token: string): boolean {
    return (
      tokensEqual(token, this.tokens.admin) ||
      (this.tokens.viewer !== undefined && tokensEqual(token, this.tokens.viewer))
    );
  }

  /** Summary, then the kept revisions after `since`, then what arrived meanwhile. */
  private async start(sub: Subscriber, since: number | undefined): Promise<void> {
    // Events after this revision are still to come (queued in the outbox, or later).
    const waiting = this.outbox.find((i) => i.kind === 'revisions');
    const revision =
      this.emitted ?? (waiting?.kind === 'revisions' ? waiting.from : this.desired.currentRevision);
    const summary = await this.summary(revision);
    if (!this.subscribers.has(sub)) return;
    const replay =
      since !== undefined && since < revision && this.ringCovers(since)
        ? this.ring.filter((e) => e.revision > since && e.revision <= revision)
        : [];
    const resumed = since !== undefined && (since >= revision || replay.length > 0);
    this.sendTo(sub, JSON.stringify({ ...summary, resumed }));
    for (const e of replay) this.sendTo(sub, e.text);
    const backlog = sub.backlog ?? [];
    sub.backlog = null;
    for (const t of backlog) this.sendTo(sub, t);
  }

  /** True when the ring holds every revision after `since` up to the last one emitted. */
  private ringCovers(since: number): boolean {
    return this.ring.length > 0 && this.ring[0].revision <= since + 1;
  }

  private async summary(revision: number) {
    const [counts] = await this.ds.query<Record<string, string>[]>(
      `SELECT (SELECT count(*) FROM hosts) AS hosts, (SELECT count(*) FROM networks) AS networks,
              (SELECT count(*) FROM instances) AS instances, (SELECT count(*) FROM routers) AS routers`,
    );
    const rows = await this.ds.getRepository(HostEntity).find({ order: { name: 'ASC' } });
    return {
      type: 'summary',
      revision,
      counts: {
        hosts: Number(counts.hosts),
        networks: Number(counts.networks),
        instances: Number(counts.instances),
        routers: Number(counts.routers),
      },
      hosts: rows.map((e) => {
        const v = hostView(e, this.sessions.live(e.id));
        return {
          id: v.id,
          name: v.name,
          connected: v.agent.connected,
          lastSeen: v.agent.lastSeen,
          desiredRevision: v.desiredRevision,
          appliedRevision: v.appliedRevision,
          inSync: v.inSync,
          errors: v.agent.errors.length,
          drift: v.agent.drift.length,
        };
      }),
    };
  }

  /** Queues a text on one subscriber's socket, or drops the subscriber if it is not reading. */
  private sendTo(sub: Subscriber, text: string): void {
    const ws = sub.socket;
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > SUBSCRIBER_QUEUE_BYTES) {
      this.subscribers.delete(sub);
      this.gauge.set(this.subscribers.size);
      this.droppedTotal.inc();
      this.log.warn(`event subscriber not reading (${ws.bufferedAmount} bytes queued): dropped`);
      ws.close(CLOSE_TOO_SLOW, 'too slow');
      setTimeout(() => ws.terminate(), DROP_GRACE_MS).unref();
      return;
    }
    ws.send(text);
  }

  private broadcast(text: string): void {
    for (const sub of this.subscribers) {
      if (sub.backlog) sub.backlog.push(text);
      else this.sendTo(sub, text);
    }
  }

  // ---- the ordered outbox ------------------------------------------------------------

  private push(event: object): void {
    if (this.subscribers.size === 0 && this.outbox.length === 0) return;
    this.outbox.push({ kind: 'text', text: JSON.stringify(event) });
    this.flush();
  }

  private onRevision(u: RevisionUpdate): void {
    const hosts = [...u.hosts.keys(), ...(u.resync?.keys() ?? [])];
    // A recompute may publish a revision already seen: its agents are resynced, no event.
    if (this.queued !== undefined && u.revision <= this.queued) return;
    this.track(u.revision, hosts);
    const from = this.queued ?? u.revision - 1;
    this.queued = u.revision;
    const item: Item = { kind: 'revisions', from, to: u.revision, hosts, at: new Date() };
    // Committed here or caught up from the log, the changes are in memory; only revisions
    // not published before this one (after a recompute) are read from the table.
    if (u.changes && from === u.revision - 1) {
      item.loaded = [
        { revision: u.revision, text: revisionText(u.revision, item.at, hosts, u.changes) },
      ];
      this.outbox.push(item);
      this.flush();
      return;
    }
    this.outbox.push(item);
    void this.load();
  }

  /** Reads the change lists of every revision waiting in the outbox, in one query. */
  private async load(): Promise<void> {
    if (this.loading) return;
    const waiting = this.outbox.filter(
      (i): i is Extract<Item, { kind: 'revisions' }> => i.kind === 'revisions' && !i.loaded,
    );
    if (waiting.length === 0) return;
    this.loading = true;
    try {
      await this.loadInto(waiting);
    } finally {
      this.loading = false;
    }
    this.flush();
    void this.load();
  }

  private async loadInto(waiting: Extract<Item, { kind: 'revisions' }>[]): Promise<void> {
    const from = waiting[0].from;
    const to = waiting[waiting.length - 1].to;
    let rows: { revision: string; committed_at: Date; hosts: string[]; changes: Change[] }[] = [];
    let failed = false;
    try {
      rows = await this.ds.query(
        'SELECT revision, committed_at, hosts, changes FROM revisions WHERE revision > $1 AND revision <= $2 ORDER BY revision',
        [from, to],
      );
    } catch (e) {
      failed = true;
      this.log.warn(
        `revision changes not read for the event stream: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    const byRevision = new Map(rows.map((r) => [Number(r.revision), r]));
    for (const item of waiting) {
      const loaded: { revision: number; text: string }[] = [];
      for (let rev = item.from + 1; rev <= item.to; rev++) {
        const row = byRevision.get(rev);
        if (!row && rev !== item.to) continue; // compacted, or never seen: nothing to say
        loaded.push({
          revision: rev,
          text: revisionText(
            rev,
            row?.committed_at ?? item.at,
            row?.hosts ?? item.hosts,
            row?.changes ?? [],
            !row && failed,
          ),
        });
      }
      item.loaded = loaded;
    }
  }

  /** Broadcasts the outbox's ready head, in order. */
  private flush(): void {
    while (this.outbox.length > 0) {
      const head = this.outbox[0];
      if (head.kind === 'text') this.broadcast(head.text);
      else if (head.loaded) {
        for (const e of head.loaded) {
          this.broadcast(e.text);
          this.remember(e);
          this.emitted = e.revision;
        }
        this.emitted = head.to;
      } else return;
      this.outbox.shift();
    }
  }

  private remember(e: { revision: number; text: string }): void {
    this.ring.push(e);
    this.ringBytes += e.text.length;
    while (this.ring.length > RING_EVENTS || (this.ringBytes > RING_BYTES && this.ring.length > 1))
      this.ringBytes -= this.ring.shift()!.text.length;
  }

  // ---- agents and convergence --------------------------------------------------------

  private onAgent(e: AgentEvent): void {
    const last = this.agents.get(e.host);
    if (!last || last.connected !== e.connected || last.applied !== e.applied) {
      this.push({
        type: 'agent',
        host: e.host,
        name: e.name,
        connected: e.connected,
        appliedRevision: e.applied,
        lastSeen: e.lastSeen.toISOString(),
      });
    }
    const next: LastAgent = { connected: e.connected, applied: e.applied, errors: last?.errors };
    if (e.errors) {
      const text = JSON.stringify(e.errors);
      if (text !== (last?.errors ?? '[]'))
        this.push({ type: 'errors', host: e.host, errors: e.errors });
      next.errors = text;
    }
    if (e.drift) this.push({ type: 'drift', host: e.host, items: e.drift });
    this.agents.set(e.host, next);
    if (e.connected) this.applied(e.host, e.applied);
    else this.gone(e.host);
  }

  /** Starts timing a revision: the agents connected now of the hosts it changed. */
  private track(revision: number, hosts: readonly string[]): void {
    const pending = new Set<string>();
    for (const h of hosts) {
      const live = this.sessions.live(h);
      if (live && live.applied < revision) pending.add(h);
    }
    if (pending.size === 0) return;
    this.trackers.set(revision, { revision, started: performance.now(), pending, applied: 0 });
    for (const old of this.trackers.keys()) {
      if (this.trackers.size <= MAX_TRACKED) break;
      this.trackers.delete(old);
    }
  }

  private applied(host: string, revision: number): void {
    for (const t of this.trackers.values()) {
      if (t.revision > revision) break; // trackers are in revision order
      if (!t.pending.delete(host)) continue;
      t.applied++;
      if (t.pending.size === 0) this.converged(t);
    }
  }

  /** A disconnected agent is no longer waited for (as with `?wait=applied`). */
  private gone(host: string): void {
    for (const t of this.trackers.values())
      if (t.pending.delete(host) && t.pending.size === 0) this.converged(t);
  }

  private converged(t: Tracker): void {
    this.trackers.delete(t.revision);
    if (t.applied === 0) return;
    this.push({
      type: 'converged',
      revision: t.revision,
      ms: Math.round(performance.now() - t.started),
      hosts: t.applied,
    });
  }

  private sweepTrackers(): void {
    const old = performance.now() - TRACK_MS;
    for (const t of this.trackers.values()) if (t.started < old) this.trackers.delete(t.revision);
  }
}
