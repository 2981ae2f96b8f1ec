import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { applyDiff, type Resource } from '../../../libs/engine/src/index.js';
import {
  CLOSE,
  encode,
  MAX_FRAME_BYTES,
  parseControllerFrame,
  type ControllerFrame,
  type DiffFrame,
  type ResourceError,
  type Snapshot,
  type Unversioned,
  type AgentFrame,
} from '../../../libs/protocol/src/index.js';
import type { Dataplane } from './dataplane/dataplane.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  /** `ws://host:port/agent` */
  controller: string;
  host: string;
  token: string;
  dataplane: Dataplane;
  /** Where the applied revision and desired state are kept across restarts; none: memory only. */
  stateDir?: string;
  heartbeatMs?: number;
  /** How often the data plane is read back and repaired; 0 disables. */
  driftIntervalMs?: number;
  /** Reconnect backoff: first delay and cap (full jitter in between). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  log?: (line: string) => void;
}

type Listener = (e: AgentEvent) => void;
export type AgentEvent =
  | { type: 'connected' }
  | {
      type: 'applied';
      revision: number;
      via: 'snapshot' | 'diff';
      errors: readonly ResourceError[];
    }
  | { type: 'disconnected'; code: number; reason: string }
  | { type: 'drift'; items: number };

/**
 * The host agent: keeps one WebSocket to the controller, applies what it is sent through a
 * data plane, acknowledges, heartbeats, repairs drift, and reconnects with exponential
 * backoff and jitter. It never tears the data plane down because the controller went
 * away: the last desired state stays applied until the controller says otherwise.
 */
export class Agent {
  private socket: WebSocket | undefined;
  private desired = new Map<string, Resource>();
  private applied = 0;
  /** The id of the controller database the applied state came from. */
  private cluster: string | undefined;
  private stopped = false;
  private attempt = 0;
  private queue: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private reconnectTimer: NodeJS.Timeout | undefined;
  private synced = false;
  private readonly listeners = new Set<Listener>();
  /** Counts of what was received, for tests and benchmarks. */
  readonly received = { snapshot: 0, diff: 0, error: 0, bytes: 0 };

  constructor(private readonly o: AgentOptions) {}

  get appliedRevision(): number {
    return this.applied;
  }

  desiredState(): ReadonlyMap<string, Resource> {
    return this.desired;
  }

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: AgentEvent): void {
    for (const l of this.listeners) l(e);
  }

  private say(line: string): void {
    this.o.log?.(`[agent ${this.o.host}] ${line}`);
  }

  /** Restores what was applied before a restart, then connects. */
  async start(): Promise<void> {
    const saved = this.load();
    if (saved) {
      this.desired = new Map(saved.resources.map((r) => [r.key, r]));
      this.applied = saved.revision;
      this.cluster = saved.cluster;
      const errors = await this.o.dataplane.sync(saved.resources);
      this.synced = true;
      this.say(
        `restored revision ${saved.revision} (${saved.resources.length} resources, ${errors.length} errors)`,
      );
    }
    const hb = this.o.heartbeatMs ?? 10_000;
    this.timers.push(
      setInterval(() => this.send({ type: 'heartbeat', appliedRevision: this.applied }), hb),
    );
    const drift = this.o.driftIntervalMs ?? 0;
    if (drift > 0)
      this.timers.push(setInterval(() => this.enqueue(() => this.checkDrift()), drift));
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.reconnectTimer);
    const s = this.socket;
    if (s && s.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((done) => {
        s.once('close', () => done());
        s.close(1000, 'agent stopping');
        setTimeout(() => (s.terminate(), done()), 1000).unref();
      });
    }
    await this.queue;
    await this.o.dataplane.close();
  }

  private connect(): void {
    if (this.stopped) return;
    const s = new WebSocket(this.o.controller, {
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: 5000,
    });
    this.socket = s;
    s.on('open', () => {
      this.send({
        type: 'hello',
        host: this.o.host,
        token: this.o.token,
        appliedRevision: this.applied,
        agentVersion: AGENT_VERSION,
        ...(this.cluster ? { cluster: this.cluster } : {}),
      });
    });
    s.on('message', (data: Buffer) => {
      this.received.bytes += data.length;
      const parsed = parseControllerFrame(data.toString('utf8'));
      if (!parsed.ok) {
        this.say(`bad frame from the controller: ${parsed.error}`);
        return;
      }
      const f = parsed.frame;
      if (f.type === 'error') {
        this.received.error++;
        this.say(`controller says: ${f.code}: ${f.message}`);
        return;
      }
      this.attempt = 0;
      this.enqueue(() => this.handle(f));
    });
    s.on('error', (e) => this.say(`connection error: ${e.message}`));
    s.on('close', (code, reason) => {
      if (this.socket !== s) return;
      this.socket = undefined;
      this.emit({ type: 'disconnected', code, reason: reason.toString() });
      if (this.stopped) return;
      if (code === CLOSE.POLICY || code === CLOSE.VERSION)
        this.say(`refused by the controller (${code} ${reason.toString()})`);
      // Exponential backoff with full jitter; the data plane stays as it is meanwhile.
      const min = this.o.backoffMinMs ?? 500;
      const max = this.o.backoffMaxMs ?? 30_000;
      const delay = Math.random() * Math.min(max, min * 2 ** this.attempt++);
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private enqueue(job: () => Promise<void>): void {
    this.queue = this.queue
      .then(job)
      .catch((e: unknown) => this.say(`error: ${e instanceof Error ? e.stack : String(e)}`));
  }

  private send(f: Unversioned<AgentFrame>): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(encode(f));
  }

  private async handle(f: Exclude<ControllerFrame, { type: 'error' }>): Promise<void> {
    if (f.type === 'snapshot') return this.onSnapshot(f);
    return this.onDiff(f);
  }

  private async onSnapshot(f: Snapshot): Promise<void> {
    this.received.snapshot++;
    this.cluster = f.cluster;
    const errors = await this.o.dataplane.sync(f.resources);
    this.synced = true;
    this.desired = new Map(f.resources.map((r) => [r.key, r]));
    this.done(f.revision, 'snapshot', errors);
  }

  private async onDiff(f: DiffFrame): Promise<void> {
    this.received.diff++;
    if (f.toRevision <= this.applied) {
      // Already there (e.g. the in-sync answer to a hello): say so again.
      this.cluster = f.cluster;
      this.done(this.applied, 'diff', []);
      return;
    }
    if (f.fromRevision > this.applied) {
      // A gap: something was missed. Reconnecting makes the controller resend from here.
      this.say(`diff from ${f.fromRevision} but applied ${this.applied}: resyncing`);
      this.socket?.close(1000, 'resync');
      return;
    }
    const errors = await this.o.dataplane.apply(f);
    this.desired = applyDiff(this.desired, f);
    this.cluster = f.cluster;
    // A diff applied on top of a known base (the empty state at revision 0, a snapshot or
    // the restored state) leaves the whole desired state known: drift checks may start.
    // Without this, an agent that started fresh and was brought forward by diffs only
    // (the controller answers `hello` at revision 0 with a diff) never repaired drift.
    this.synced = true;
    this.done(f.toRevision, 'diff', errors);
  }

  private done(revision: number, via: 'snapshot' | 'diff', errors: readonly ResourceError[]): void {
    this.applied = revision;
    this.save();
    if (errors.length > 0) this.send({ type: 'status', revision, errors });
    else this.send({ type: 'ack', revision });
    this.emit({ type: 'applied', revision, via, errors });
  }

  private async checkDrift(): Promise<void> {
    if (!this.synced) return;
    const items = await this.o.dataplane.checkDrift(this.desired);
    if (items.length === 0) return;
    this.say(
      `drift: ${items.map((i) => `${i.key} (${i.message}${i.repaired ? ', repaired' : ''})`).join('; ')}`,
    );
    this.send({ type: 'drift', revision: this.applied, items });
    this.emit({ type: 'drift', items: items.length });
  }

  private statePath(): string | undefined {
    return this.o.stateDir ? join(this.o.stateDir, 'state.json') : undefined;
  }

  private load(): { revision: number; cluster?: string; resources: Resource[] } | undefined {
    const p = this.statePath();
    if (!p || !existsSync(p)) return undefined;
    try {
      const v = JSON.parse(readFileSync(p, 'utf8')) as {
        revision: number;
        cluster?: string;
        resources: Resource[];
      };
      if (Number.isSafeInteger(v.revision) && Array.isArray(v.resources)) return v;
    } catch {
      // fall through: a damaged file means starting from a snapshot
    }
    this.say(`ignoring unreadable ${p}`);
    return undefined;
  }

  /** Written atomically (rename), so a crash leaves the old or the new state, never half. */
  private save(): void {
    const p = this.statePath();
    if (!p) return;
    mkdirSync(this.o.stateDir!, { recursive: true });
    writeFileSync(
      `${p}.tmp`,
      JSON.stringify({
        revision: this.applied,
        cluster: this.cluster,
        resources: [...this.desired.values()],
      }),
    );
    renameSync(`${p}.tmp`, p);
  }
}
