import WebSocket from 'ws';
import { EMPTY_DIFF, type Resource } from '../../../libs/engine/src/index.js';
import {
  boundReport,
  CLOSE,
  encode,
  MAX_FRAME_BYTES,
  parseControllerFrame,
  PartAssembler,
  type ControllerFrame,
  type DiffFrame,
  type ResourceError,
  type Snapshot,
  type Unversioned,
  type AgentFrame,
} from '../../../libs/protocol/src/index.js';
import type { Dataplane } from './dataplane/dataplane.js';
import { RECONNECT_DEFAULTS, ReconnectPolicy } from './reconnect.js';
import { applyDiffInPlace, StateStore } from './state-store.js';

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
  /**
   * After a working session closes (controller restart, dropped socket): retry within
   * `fastRetryMaxMs` (uniform jitter) for `fastRetryWindowMs`, then back off (reconnect.ts).
   */
  fastRetryMaxMs?: number;
  fastRetryWindowMs?: number;
  /**
   * A connection on which nothing (not even a pong to the ping sent with each heartbeat)
   * came for this long is dropped and reconnected: a half-open socket to a controller
   * host that vanished. 0 disables; default max(30 s, 3 heartbeats).
   */
  controllerTimeoutMs?: number;
  /**
   * For `wss://`: the CA certificate(s) (PEM) the controller's certificate must chain to,
   * instead of the system's trusted CAs. Certificates are always verified.
   */
  ca?: string | Buffer;
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
  | { type: 'disconnected'; code: number; reason: string; retryInMs: number; fast: boolean }
  | { type: 'drift'; items: number };

/**
 * The host agent: keeps one WebSocket to the controller, applies what it is sent through a
 * data plane, acknowledges, heartbeats, repairs drift, and reconnects (quickly after a
 * working session ended, with exponential backoff and jitter otherwise: reconnect.ts). It
 * persists each frame before acknowledging it (state-store.ts). It never tears the data
 * plane down because the controller went away: the last desired state stays applied until
 * the controller says otherwise.
 */
export class Agent {
  private socket: WebSocket | undefined;
  private desired = new Map<string, Resource>();
  private applied = 0;
  /** The id of the controller database the applied state came from. */
  private cluster: string | undefined;
  private stopped = false;
  private readonly reconnect: ReconnectPolicy;
  private readonly store: StateStore | undefined;
  /** Frames received and not yet applied. */
  private pending = 0;
  private lastHeard = 0;
  private queue: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private reconnectTimer: NodeJS.Timeout | undefined;
  private synced = false;
  private readonly parts = new PartAssembler();
  private readonly listeners = new Set<Listener>();
  /** Counts of what was received, for tests and benchmarks. */
  readonly received = { snapshot: 0, diff: 0, error: 0, bytes: 0 };

  constructor(private readonly o: AgentOptions) {
    this.reconnect = new ReconnectPolicy({
      backoffMinMs: o.backoffMinMs ?? RECONNECT_DEFAULTS.backoffMinMs,
      backoffMaxMs: o.backoffMaxMs ?? RECONNECT_DEFAULTS.backoffMaxMs,
      fastRetryMaxMs: o.fastRetryMaxMs ?? RECONNECT_DEFAULTS.fastRetryMaxMs,
      fastRetryWindowMs: o.fastRetryWindowMs ?? RECONNECT_DEFAULTS.fastRetryWindowMs,
    });
    this.store = o.stateDir ? new StateStore(o.stateDir, (l) => this.say(l)) : undefined;
  }

  get appliedRevision(): number {
    return this.applied;
  }

  /** The desired state as applied: a live view, updated in place by each frame. */
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
    const saved = this.store?.load();
    if (saved) {
      this.desired = saved.resources;
      this.applied = saved.revision;
      this.cluster = saved.cluster;
      const errors = await this.o.dataplane.sync([...saved.resources.values()]);
      this.synced = true;
      // Start with an empty journal (and drop a torn last line, if any).
      if (this.store!.pendingJournalBytes > 0) this.store!.compact(this.state());
      this.say(
        `restored revision ${saved.revision} (${saved.resources.size} resources, ${saved.replayed} journal entries, ${errors.length} errors)`,
      );
    }
    const hb = this.o.heartbeatMs ?? 10_000;
    const timeout = this.o.controllerTimeoutMs ?? Math.max(30_000, 3 * hb);
    this.timers.push(setInterval(() => this.heartbeat(timeout), hb));
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
    if (this.store) {
      if (this.store.pendingJournalBytes > 0) this.store.compact(this.state());
      this.store.close();
    }
    await this.o.dataplane.close();
  }

  private heartbeat(timeoutMs: number): void {
    const s = this.socket;
    if (s?.readyState !== WebSocket.OPEN) return;
    if (timeoutMs > 0 && Date.now() - this.lastHeard > timeoutMs) {
      this.say(`nothing from the controller for ${timeoutMs} ms: reconnecting`);
      s.terminate();
      return;
    }
    this.send({ type: 'heartbeat', appliedRevision: this.applied });
    if (timeoutMs > 0) s.ping();
  }

  private connect(): void {
    if (this.stopped) return;
    const s = new WebSocket(this.o.controller, {
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: 5000,
      ...(this.o.ca !== undefined ? { ca: this.o.ca } : {}),
    });
    this.socket = s;
    this.parts.reset();
    let opened = false;
    s.on('open', () => {
      opened = true;
      this.lastHeard = Date.now();
      this.send({
        type: 'hello',
        host: this.o.host,
        token: this.o.token,
        appliedRevision: this.applied,
        agentVersion: AGENT_VERSION,
        ...(this.cluster ? { cluster: this.cluster } : {}),
      });
    });
    s.on('pong', () => (this.lastHeard = Date.now()));
    s.on('message', (data: Buffer) => {
      this.lastHeard = Date.now();
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
      this.reconnect.worked();
      // A state too big for one frame comes in parts: nothing applies before the last one.
      const whole = this.parts.add(f);
      if (whole === null) return;
      if ('error' in whole) {
        this.say(`${whole.error}: resyncing`);
        s.close(1000, 'resync');
        return;
      }
      const frame = whole.frame as typeof f;
      this.pending++;
      this.enqueue(() => this.handle(frame).finally(() => this.pending--));
    });
    s.on('error', (e) => this.say(connectionError(e, this.o.ca !== undefined)));
    s.on('close', (code, reason) => {
      if (this.socket !== s) return;
      this.socket = undefined;
      if (this.stopped) {
        this.emit({
          type: 'disconnected',
          code,
          reason: reason.toString(),
          retryInMs: 0,
          fast: false,
        });
        return;
      }
      // The data plane stays as it is meanwhile.
      const { delayMs, fast } = this.reconnect.next(code);
      if (code === CLOSE.POLICY || code === CLOSE.VERSION)
        this.say(`refused by the controller (${code} ${reason.toString()})`);
      else if (opened)
        this.say(
          `disconnected (${code}${reason.length ? ` ${reason.toString()}` : ''}): reconnecting in ${Math.round(delayMs)} ms${fast ? ' (fast retry)' : ''}`,
        );
      this.emit({
        type: 'disconnected',
        code,
        reason: reason.toString(),
        retryInMs: delayMs,
        fast,
      });
      this.reconnectTimer = setTimeout(() => this.connect(), delayMs);
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
    this.applied = f.revision;
    // A snapshot costs the size of the state anyway: it becomes the new base on disk.
    this.store?.compact(this.state());
    await this.done(f.revision, 'snapshot', errors);
  }

  private async onDiff(f: DiffFrame): Promise<void> {
    this.received.diff++;
    if (f.toRevision <= this.applied) {
      // Already there (e.g. the in-sync answer to a hello): say so again.
      if (f.cluster !== this.cluster) {
        this.cluster = f.cluster;
        this.store?.append(this.applied, this.applied, f.cluster, EMPTY_DIFF, () => this.state());
      }
      await this.done(this.applied, 'diff', []);
      return;
    }
    if (f.fromRevision > this.applied) {
      // A gap: something was missed. Reconnecting makes the controller resend from here.
      this.say(`diff from ${f.fromRevision} but applied ${this.applied}: resyncing`);
      this.socket?.close(1000, 'resync');
      return;
    }
    const errors = await this.o.dataplane.apply(f);
    // In place: what this costs is the size of the diff, not of the state.
    applyDiffInPlace(this.desired, f);
    const from = this.applied;
    this.applied = f.toRevision;
    this.cluster = f.cluster;
    // Durable (in the kernel) before the ack below says so.
    this.store?.append(from, f.toRevision, f.cluster, f, () => this.state());
    // A diff applied on top of a known base (the empty state at revision 0, a snapshot or
    // the restored state) leaves the whole desired state known: drift checks may start.
    // Without this, an agent that started fresh and was brought forward by diffs only
    // (the controller answers `hello` at revision 0 with a diff) never repaired drift.
    this.synced = true;
    await this.done(f.toRevision, 'diff', errors);
  }

  private state() {
    return { revision: this.applied, cluster: this.cluster, resources: this.desired };
  }

  /** Acknowledges a frame whose state is already persisted. */
  private async done(
    revision: number,
    via: 'snapshot' | 'diff',
    errors: readonly ResourceError[],
  ): Promise<void> {
    // Nothing else to apply: let the data plane write what it defers (the memory data
    // plane's dump file) so that what was acknowledged can be read back at once.
    if (this.pending <= 1) await this.o.dataplane.flush?.();
    // At most REPORT_LIMITS entries, messages cut: a host failing everywhere stays cheap.
    if (errors.length > 0) this.send({ type: 'status', revision, errors: boundReport(errors, {}) });
    else this.send({ type: 'ack', revision });
    this.emit({ type: 'applied', revision, via, errors });
  }

  private async checkDrift(): Promise<void> {
    if (!this.synced) return;
    const items = await this.o.dataplane.checkDrift(this.desired);
    if (items.length === 0) return;
    const report = boundReport(items, { repaired: false });
    this.say(
      `drift: ${report.map((i) => `${i.key} (${i.message}${i.repaired ? ', repaired' : ''})`).join('; ')}`,
    );
    this.send({ type: 'drift', revision: this.applied, items: report });
    this.emit({ type: 'drift', items: items.length });
  }
}

/** Certificate verification failures of the TLS handshake (Node's error codes). */
const UNTRUSTED_CERT = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A connection error for the log; an untrusted controller certificate says what to do. */
function connectionError(e: Error & { code?: string }, withCa: boolean): string {
  if (e.code && UNTRUSTED_CERT.has(e.code)) {
    const hint =
      e.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? "the certificate does not name the controller's address"
        : withCa
          ? 'it does not chain to the CA of --ca-file'
          : 'pass the CA that signed it with --ca-file';
    return `refusing the controller: its TLS certificate is not trusted (${e.code}: ${e.message}); ${hint}`;
  }
  return `connection error: ${e.message}`;
}
