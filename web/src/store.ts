/**
 * The dashboard's live state: hosts, networks, routers and pools from REST, kept current by
 * the event stream (`/events`), or by polling REST every few seconds while the stream is
 * unavailable. Instances themselves are never all held: views page them from the API.
 * Instance counts per network (and hosts spanned) and per host come with the network and
 * host lists, counted by the server. Only the topology needs the network × host breakdown:
 * it asks for it (`wantSpans`), and only then are instances scanned page by page.
 */
import {
  Api,
  MAX_PAGE,
  type Host,
  type Instance,
  type Network,
  type Page,
  type Pools,
  type Router,
} from './api';

export type Link = 'connecting' | 'live' | 'polling';

export interface Aggregate {
  /** instances per network name */
  perNetwork: Map<string, number>;
  /** network name → host name → instances (empty until the topology asks for it) */
  spans: Map<string, Map<string, number>>;
  total: number;
  at: number;
}

export interface ConvergedSample {
  at: number;
  revision: number;
  ms: number;
}

interface SummaryHost {
  id: string;
  name: string;
  connected: boolean;
  lastSeen: string | null;
  desiredRevision: number;
  appliedRevision: number;
  inSync: boolean;
  errors: unknown;
  drift: unknown;
}

type StreamMessage =
  | {
      type: 'summary';
      revision: number;
      counts: Record<string, number>;
      hosts: SummaryHost[];
    }
  | {
      type: 'revision';
      revision: number;
      at: string;
      hosts: string[];
      changes: { type: string; id: string; name?: string }[];
    }
  | {
      type: 'agent';
      host: string;
      name?: string;
      connected: boolean;
      appliedRevision: number;
      lastSeen: string | null;
    }
  | { type: 'errors'; host: string; errors: unknown }
  | { type: 'drift'; host: string; items: unknown }
  | { type: 'converged'; revision: number; ms: number; hosts: unknown };

const POLL_MS = 3000;
const WINDOW_MS = 15 * 60_000;

const asList = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);

export class Store {
  hosts: Host[] = [];
  networks: Network[] = [];
  routers: Router[] = [];
  pools: Pools | undefined;
  agg: Aggregate | undefined;
  revision = 0;
  counts: Record<string, number> = {};
  converged: ConvergedSample[] = [];
  link: Link = 'connecting';
  /** bumped on every change of instances (views re-read their page) */
  instancesVersion = 0;
  lastUpdate = 0;
  error: string | undefined;

  private listeners = new Set<() => void>();
  private ws: WebSocket | undefined;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pending = new Map<string, ReturnType<typeof setTimeout>>();
  private running = new Set<string>();
  private stopped = false;
  private scanMs = 0;
  /** the topology is shown: keep the network × host breakdown current */
  private spansWanted = false;
  private spans: { map: Map<string, Map<string, number>>; at: number } | undefined;

  constructor(readonly api: Api) {}

  subscribe(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private emit(): void {
    this.lastUpdate = Date.now();
    for (const f of this.listeners) f();
  }

  async start(): Promise<void> {
    await Promise.all([
      this.loadHosts(),
      this.loadNetworks(),
      this.loadRouters(),
      this.loadPools(),
    ]);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.ws?.close();
    clearTimeout(this.pollTimer);
    clearTimeout(this.retryTimer);
    for (const t of this.pending.values()) clearTimeout(t);
  }

  // ---- REST loads ----------------------------------------------------------------------

  /**
   * The topology asks for instances per network and host (on) or no longer needs them
   * (off): the scan pages through every instance, so it runs only while it is wanted.
   */
  wantSpans(on: boolean): void {
    this.spansWanted = on;
    if (on && !this.spans) void this.run('spans', () => this.scan());
  }

  private async loadHosts() {
    this.hosts = await this.api.all<Host>('/hosts');
    this.revision = Math.max(this.revision, ...this.hosts.map((h) => h.desiredRevision));
    this.counts.hosts = this.hosts.length;
    this.emit();
  }
  private async loadNetworks() {
    this.networks = await this.api.all<Network>('/networks');
    this.counts.networks = this.networks.length;
    this.aggregate();
    this.emit();
  }
  private async loadRouters() {
    this.routers = await this.api.all<Router>('/routers');
    this.counts.routers = this.routers.length;
    this.emit();
  }
  private async loadPools() {
    this.pools = await this.api.get<Pools>('/pools');
    this.emit();
  }

  /** Instance counts from the network list (and the scanned breakdown, when there is one). */
  private aggregate() {
    const perNetwork = new Map<string, number>();
    let total = 0;
    for (const n of this.networks) {
      perNetwork.set(n.name, n.instanceCount);
      total += n.instanceCount;
    }
    this.agg = {
      perNetwork,
      spans: this.spans?.map ?? new Map<string, Map<string, number>>(),
      total,
      at: Date.now(),
    };
    this.counts.instances = total;
  }

  /** Instances per network and host, page by page; only the counts are kept. */
  private async scan() {
    const t0 = performance.now();
    const spans = new Map<string, Map<string, number>>();
    let cursor: string | null = null;
    do {
      const p: Page<Instance> = await this.api.page<Instance>('/instances', MAX_PAGE, cursor);
      for (const i of p.items) {
        let s = spans.get(i.network);
        if (!s) spans.set(i.network, (s = new Map<string, number>()));
        s.set(i.host, (s.get(i.host) ?? 0) + 1);
      }
      cursor = p.nextCursor;
    } while (cursor);
    this.spans = { map: spans, at: Date.now() };
    if (this.agg) this.agg = { ...this.agg, spans };
    this.scanMs = performance.now() - t0;
    this.emit();
  }

  /**
   * Runs `f` soon, at most one at a time per kind, coalescing requests that arrive while
   * one runs (a burst of revisions costs one reload).
   */
  private schedule(kind: string, f: () => Promise<void>, delay = 150) {
    if (this.pending.has(kind)) return;
    this.pending.set(
      kind,
      setTimeout(() => {
        this.pending.delete(kind);
        void this.run(kind, f);
      }, delay),
    );
  }
  private async run(kind: string, f: () => Promise<void>) {
    if (this.running.has(kind)) {
      this.schedule(kind, f, 500);
      return;
    }
    this.running.add(kind);
    try {
      await f();
      this.error = undefined;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
      this.emit();
    } finally {
      this.running.delete(kind);
    }
  }

  private refreshFor(types: Set<string>) {
    if (types.has('host') || types.size === 0) this.schedule('hosts', () => this.loadHosts());
    if (types.has('network') || types.size === 0) {
      this.schedule('networks', () => this.loadNetworks());
      this.schedule('pools', () => this.loadPools());
    }
    if (types.has('router') || types.size === 0) this.schedule('routers', () => this.loadRouters());
    if (types.has('instance') || types.size === 0) {
      this.instancesVersion++;
      // Counts come with the lists (one page each at fleet size).
      this.schedule('networks', () => this.loadNetworks());
      this.schedule('hosts', () => this.loadHosts());
      // The breakdown costs one request per 1,000 instances: at most about a tenth of the time.
      if (this.spansWanted)
        this.schedule('spans', () => this.scan(), Math.max(300, this.scanMs * 10));
      else this.spans = undefined;
    }
    this.emit();
  }

  // ---- the event stream ----------------------------------------------------------------

  private connect() {
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let opened = false;
    let ws: WebSocket;
    try {
      ws = new WebSocket(`${proto}//${location.host}/events`);
    } catch {
      this.fallback();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      ws.send(
        JSON.stringify({
          type: 'auth',
          token: this.api.token,
          ...(this.revision ? { since: this.revision } : {}),
        }),
      );
    };
    ws.onmessage = (ev: MessageEvent<string>) => {
      let m: StreamMessage;
      try {
        m = JSON.parse(ev.data) as StreamMessage;
      } catch {
        return;
      }
      if (!opened) {
        opened = true;
        this.link = 'live';
        clearTimeout(this.pollTimer);
        this.pollTimer = undefined;
      }
      this.onMessage(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.fallback();
    };
    ws.onerror = () => ws.close();
  }

  /** The stream is down (or not there): poll REST, and try the stream again later. */
  private fallback() {
    if (this.stopped) return;
    this.link = 'polling';
    this.emit();
    if (!this.pollTimer) this.poll();
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), 10_000);
  }

  private poll() {
    this.pollTimer = setTimeout(() => {
      if (this.link !== 'polling') return;
      this.refreshFor(new Set());
      this.poll();
    }, POLL_MS);
  }

  private hostBy(idOrName: string): Host | undefined {
    return this.hosts.find((h) => h.id === idOrName || h.name === idOrName);
  }

  private onMessage(m: StreamMessage) {
    switch (m.type) {
      case 'summary': {
        this.revision = m.revision;
        this.counts = { ...this.counts, ...m.counts };
        for (const s of m.hosts) {
          const h = this.hostBy(s.id);
          if (!h) continue;
          h.agent = { ...h.agent, connected: s.connected, lastSeen: s.lastSeen };
          if (Array.isArray(s.errors)) h.agent.errors = asList(s.errors);
          if (Array.isArray(s.drift)) h.agent.drift = asList(s.drift);
          h.desiredRevision = s.desiredRevision;
          h.appliedRevision = s.appliedRevision;
          h.inSync = s.inSync;
        }
        if (m.hosts.length !== this.hosts.length) this.refreshFor(new Set(['host']));
        // Whatever changed while the stream was down.
        this.refreshFor(new Set());
        break;
      }
      case 'revision': {
        this.revision = Math.max(this.revision, m.revision);
        for (const id of m.hosts) {
          const h = this.hostBy(id);
          if (h) {
            h.desiredRevision = m.revision;
            h.inSync = h.appliedRevision >= h.desiredRevision;
          }
        }
        // Change types are `<object>.<verb>` (instance.upsert, network.delete, block.upsert…).
        const kinds = new Set(m.changes.map((c) => c.type.split('.')[0]));
        if (kinds.has('block')) kinds.add('network');
        // Changes left out of a large revision: reload everything.
        this.refreshFor(m.changes.length === 0 || 'omitted' in m ? new Set() : kinds);
        break;
      }
      case 'agent': {
        const h = this.hostBy(m.host);
        if (!h) {
          this.refreshFor(new Set(['host']));
          break;
        }
        h.agent = { ...h.agent, connected: m.connected, lastSeen: m.lastSeen };
        h.appliedRevision = m.appliedRevision;
        h.inSync = m.connected && h.appliedRevision >= h.desiredRevision;
        this.hosts = [...this.hosts];
        this.emit();
        break;
      }
      case 'errors': {
        const h = this.hostBy(m.host);
        if (h) h.agent = { ...h.agent, errors: asList(m.errors) };
        this.hosts = [...this.hosts];
        this.emit();
        break;
      }
      case 'drift': {
        const h = this.hostBy(m.host);
        if (h) h.agent = { ...h.agent, drift: asList(m.items) };
        this.hosts = [...this.hosts];
        this.emit();
        break;
      }
      case 'converged': {
        const now = Date.now();
        this.converged.push({ at: now, revision: m.revision, ms: m.ms });
        while (this.converged.length && this.converged[0].at < now - WINDOW_MS)
          this.converged.shift();
        this.emit();
        break;
      }
      default:
        break;
    }
  }
}
