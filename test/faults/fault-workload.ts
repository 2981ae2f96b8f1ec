import { FAULT_ADMIN_TOKEN } from './fault-controller.js';

/** A small seeded PRNG (mulberry32), so that a failing run can be replayed with its seed. */
export class Rng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ApiResult {
  /** 0: no HTTP answer (refused, reset, timed out: see `error`). */
  status: number;
  body: any;
  error?: string;
  ms: number;
}

/** The REST API of a controller, with the admin token; never throws. */
export class Api {
  constructor(
    public base: string,
    private readonly token = FAULT_ADMIN_TOKEN,
  ) {}

  async call(method: string, path: string, body?: unknown, timeoutMs = 20_000): Promise<ApiResult> {
    const t0 = Date.now();
    try {
      const r = await fetch(`${this.base}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await r.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Prometheus text, or nothing
      }
      return { status: r.status, body: parsed, ms: Date.now() - t0 };
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      return {
        status: 0,
        body: undefined,
        error: err.cause?.code ?? err.name ?? String(e),
        ms: Date.now() - t0,
      };
    }
  }

  /** The call, which must answer 2xx. */
  async ok(method: string, path: string, body?: unknown): Promise<any> {
    const r = await this.call(method, path, body);
    if (r.status < 200 || r.status >= 300)
      throw new Error(`${method} ${path}: ${r.status} ${r.error ?? JSON.stringify(r.body)}`);
    return r.body;
  }
}

/** What the workload knows of one instance it created (or tried to). */
export interface InstanceRecord {
  readonly name: string;
  readonly network: string;
  /** `maybe`: a request on it got no definite answer (committed or not, unknown). */
  exists: 'yes' | 'no' | 'maybe';
  /** Where it may be: one host once known, two after a move of unknown outcome. */
  hosts: Set<string>;
  ip?: string;
  mac?: string;
  /** The bulk that created it. */
  bulk?: number;
  /** The last request on it, and how it was answered. */
  last: 'create' | 'move' | 'delete';
  answer?: string;
  busy: boolean;
}

export interface BulkRecord {
  readonly id: number;
  readonly names: string[];
  outcome: 'ok' | 'unknown' | 'refused';
  answer?: string;
}

export type OpKind = 'create' | 'bulk' | 'move' | 'delete';

export interface OpOutcome {
  kind: OpKind;
  status: number;
  error?: string;
  /** Milliseconds since the epoch, when it was sent and answered. */
  sent: number;
  answered: number;
  wait: boolean;
}

export interface WorkloadNetwork {
  readonly name: string;
  /** Instances of it may move (not block-based). */
  readonly movable: boolean;
}

const committed = (status: number) => (status >= 200 && status < 300) || status === 504;
const describe = (r: ApiResult, wait: boolean) =>
  `${r.status}${r.error ? ` ${r.error}` : ''}${r.status >= 400 && r.body?.message ? ` "${r.body.message}"` : ''}${wait ? ' (wait=applied)' : ''}`;

/** Refused by the controller (4xx), or never delivered (the connection was refused). */
const notDone = (r: ApiResult) =>
  (r.status >= 400 && r.status < 500) || (r.status === 0 && r.error === 'ECONNREFUSED');

/**
 * Concurrent writers — single creates, bulk creates, moves and deletes, some with
 * `?wait=applied` — over a few networks and hosts, keeping a ledger of what each answer
 * says is now true: a 2xx (or a 504 of `?wait=applied`, which is committed) is an
 * acknowledged write that must be in the database; anything else leaves the object
 * `maybe` (refused writes must not be there either, but a lost connection says nothing).
 * One request at a time per instance, so its record stays exact.
 */
export class Workload {
  readonly instances = new Map<string, InstanceRecord>();
  readonly bulks: BulkRecord[] = [];
  readonly outcomes: OpOutcome[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;
  readonly prefix: string;
  /** Requests sent and not answered yet. */
  inFlight = 0;

  constructor(
    readonly api: Api,
    private readonly rng: Rng,
    private readonly o: {
      prefix: string;
      networks: readonly WorkloadNetwork[];
      hosts: readonly string[];
      /** Bulk sizes drawn from this range. */
      bulkSize?: [number, number];
      /** Pause between a client's requests. */
      thinkMs?: [number, number];
    },
  ) {
    this.prefix = o.prefix;
  }

  start(clients: number): void {
    if (this.running) throw new Error('workload already running');
    this.running = true;
    this.loops = Array.from({ length: clients }, () => this.loop());
  }

  /** Stops issuing requests and waits for every request in flight to be answered. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const status = await this.step();
      const [lo, hi] = this.o.thinkMs ?? [0, 10];
      // a refused or failed request: no hammering while the fault lasts
      await sleep(committed(status) ? this.rng.int(lo, hi) : 50);
    }
  }

  private async send(method: string, path: string, body?: unknown): Promise<ApiResult> {
    this.inFlight++;
    try {
      return await this.api.call(method, path, body);
    } finally {
      this.inFlight--;
    }
  }

  /** Idle instances whose state is known exactly. */
  private known(filter: (i: InstanceRecord) => boolean): InstanceRecord[] {
    const out: InstanceRecord[] = [];
    for (const i of this.instances.values())
      if (!i.busy && i.exists === 'yes' && i.hosts.size === 1 && filter(i)) out.push(i);
    return out;
  }

  private name(): string {
    return `${this.o.prefix}-${++this.seq}`;
  }

  private query(wait: boolean): string {
    return wait ? '?wait=applied&timeoutMs=3000' : '';
  }

  /** Sends one random request; resolves with its status. */
  async step(): Promise<number> {
    const r = this.rng.next();
    const wait = this.rng.next() < 0.2;
    if (r < 0.45) return this.create(wait);
    if (r < 0.55) return this.bulk(wait);
    if (r < 0.78) {
      const movable = new Set(this.o.networks.filter((n) => n.movable).map((n) => n.name));
      const c = this.known((i) => movable.has(i.network));
      if (c.length > 0) return this.move(this.rng.pick(c), wait);
      return this.create(wait);
    }
    const c = this.known(() => true);
    if (c.length > 4) return this.remove(this.rng.pick(c), wait);
    return this.create(wait);
  }

  private record(
    kind: OpKind,
    sent: number,
    res: { status: number; error?: string },
    wait: boolean,
  ) {
    this.outcomes.push({
      kind,
      status: res.status,
      error: res.error,
      sent,
      answered: Date.now(),
      wait,
    });
  }

  private async create(wait: boolean): Promise<number> {
    const network = this.rng.pick(this.o.networks).name;
    const host = this.rng.pick(this.o.hosts);
    const rec: InstanceRecord = {
      name: this.name(),
      network,
      exists: 'maybe',
      hosts: new Set([host]),
      busy: true,
      last: 'create',
    };
    this.instances.set(rec.name, rec);
    const sent = Date.now();
    const res = await this.send('POST', `/instances${this.query(wait)}`, {
      name: rec.name,
      network,
      host,
    });
    this.record('create', sent, res, wait);
    rec.answer = describe(res, wait);
    const body = res.status === 504 ? res.body?.details?.result : res.body;
    if (committed(res.status)) {
      rec.exists = 'yes';
      rec.ip = body?.ip;
      rec.mac = body?.mac;
    } else if (notDone(res)) rec.exists = 'no';
    rec.busy = false;
    return res.status;
  }

  private async bulk(wait: boolean): Promise<number> {
    const [lo, hi] = this.o.bulkSize ?? [5, 40];
    const n = this.rng.int(lo, hi);
    const b: BulkRecord = { id: this.bulks.length + 1, names: [], outcome: 'unknown' };
    this.bulks.push(b);
    const items = Array.from({ length: n }, () => {
      const it = {
        name: this.name(),
        network: this.rng.pick(this.o.networks).name,
        host: this.rng.pick(this.o.hosts),
      };
      b.names.push(it.name);
      this.instances.set(it.name, {
        name: it.name,
        network: it.network,
        exists: 'maybe',
        hosts: new Set([it.host]),
        bulk: b.id,
        busy: true,
        last: 'create',
      });
      return it;
    });
    const sent = Date.now();
    const res = await this.send('POST', `/instances/bulk${this.query(wait)}`, {
      instances: items,
    });
    this.record('bulk', sent, res, wait);
    b.answer = describe(res, wait);
    const body = res.status === 504 ? res.body?.details?.result : res.body;
    if (committed(res.status)) b.outcome = 'ok';
    else if (notDone(res)) b.outcome = 'refused';
    const got = new Map<string, { ip: string; mac: string }>(
      (body?.items ?? []).map((v: { name: string; ip: string; mac: string }) => [v.name, v]),
    );
    for (const name of b.names) {
      const rec = this.instances.get(name)!;
      if (b.outcome === 'ok') {
        rec.exists = 'yes';
        rec.ip = got.get(name)?.ip;
        rec.mac = got.get(name)?.mac;
      } else if (b.outcome === 'refused') rec.exists = 'no';
      rec.busy = false;
    }
    return res.status;
  }

  private async move(rec: InstanceRecord, wait: boolean): Promise<number> {
    const [from] = rec.hosts;
    const others = this.o.hosts.filter((h) => h !== from);
    const to = this.rng.pick(others);
    rec.busy = true;
    rec.last = 'move';
    const sent = Date.now();
    const res = await this.send('PATCH', `/instances/${rec.name}${this.query(wait)}`, {
      host: to,
    });
    this.record('move', sent, res, wait);
    rec.answer = describe(res, wait);
    if (committed(res.status)) rec.hosts = new Set([to]);
    else if (!notDone(res)) rec.hosts.add(to);
    rec.busy = false;
    return res.status;
  }

  private async remove(rec: InstanceRecord, wait: boolean): Promise<number> {
    rec.busy = true;
    rec.last = 'delete';
    const sent = Date.now();
    const res = await this.send('DELETE', `/instances/${rec.name}${this.query(wait)}`);
    this.record('delete', sent, res, wait);
    rec.answer = describe(res, wait);
    if (committed(res.status)) rec.exists = 'no';
    else if (!notDone(res)) rec.exists = 'maybe';
    rec.busy = false;
    return res.status;
  }
}
