/**
 * What the whole-system benchmarks share (bench/converge.ts, bench/dashboard.ts): the
 * BENCH.md shapes and layouts, an embedded PostgreSQL in a temporary folder, the built
 * controller in a child process, the agent fleet (bench/agent-fleet.ts) in another, a REST
 * client with the admin token, and the preload of a shape (hosts, networks cycling through
 * the models, instances in bulks of 1,000, every agent in sync).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import {
  freePort,
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from '../apps/controller/src/database/embedded-postgres.js';
import type { FleetHost, FleetReply, FleetRequest } from './fleet-protocol.js';

/** The standard shapes of BENCH.md: H hosts, S networks, P instances. */
export const SHAPES = {
  small: { H: 100, S: 100, P: 10_000 },
  mid: { H: 200, S: 200, P: 20_000 },
  large: { H: 1_000, S: 1_000, P: 100_000 },
} as const;
export type ShapeName = keyof typeof SHAPES;
export type Layout = 'spread' | 'peer';
export interface Shape {
  H: number;
  S: number;
  P: number;
  layout: Layout;
}
/** Instances per preload bulk. */
export const PRELOAD_BULK = 1000;

export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
/** VLAN ids for vlan networks (one in six): the whole range, whatever the shape. */
export const VLAN_POOL = '2-4094';

export const MODELS = [
  { label: 'overlay/vxlan', body: { model: 'overlay', encapsulation: 'vxlan' }, blocks: false },
  { label: 'fabric', body: { model: 'fabric' }, blocks: false },
  {
    label: 'routed/static',
    body: { model: 'routed', routing: 'static', blockPrefixLen: 26 },
    blocks: true,
  },
  {
    label: 'routed/bgp',
    body: { model: 'routed', routing: 'bgp', blockPrefixLen: 26 },
    blocks: true,
  },
  { label: 'vlan', body: { model: 'vlan' }, blocks: false },
  { label: 'bridge', body: { model: 'bridge' }, blocks: false },
] as const;

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = join(ROOT, 'dist');
export const RESULTS = join(ROOT, 'bench', 'results');

/** Network n: a /20 of 10.0.0.0/8 (4,093 addresses, 64 blocks of /26) — room for any run. */
export const cidrOf = (n: number) => `10.${n >> 4}.${(n & 15) << 4}.0/20`;
/** Host j on the benchmark range 198.18.0.0/15 (no packet is ever sent: memory data planes). */
export const underlayOf = (j: number) =>
  `198.${18 + ((j + 1) >> 16)}.${((j + 1) >> 8) & 255}.${(j + 1) & 255}`;
export const modelOf = (n: number) => MODELS[n % MODELS.length];

// ---- small helpers -----------------------------------------------------------------------

export const now = () => performance.now();
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const round = (x: number, d = 2) =>
  Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x;
export const mb = (bytes: number) => round(bytes / 1048576, 1);

export interface LatencyStats {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

/** Nearest-rank percentiles, milliseconds. */
export function latency(xs: number[]): LatencyStats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) =>
    s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
  return {
    n: s.length,
    p50: round(at(50)),
    p99: round(at(99)),
    mean: round(s.reduce((a, b) => a + b, 0) / (s.length || NaN)),
    max: round(s[s.length - 1] ?? NaN),
  };
}

/** Runs `work(k)` for k < n with at most `width` at a time. */
export async function pool(
  n: number,
  width: number,
  work: (k: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) await work(next++);
    }),
  );
}

export function gitInfo(): { commit: string | null; dirty: boolean | null } {
  try {
    const git = (...a: string[]) =>
      execFileSync('git', a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const commit = git('rev-parse', 'HEAD').trim();
    const status = git('status', '--porcelain');
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return { commit: null, dirty: null };
  }
}

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

// ---- the controller process ------------------------------------------------------------

export class ControllerProcess {
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((done) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        done(this.exitCode);
      }),
    );
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** `node`: extra node options (e.g. --cpu-prof). */
  static start(
    env: NodeJS.ProcessEnv,
    logFile: string,
    run: number,
    node: string[] = [],
  ): ControllerProcess {
    const fd = openSync(logFile, 'a');
    writeFileSync(fd, `---- controller start ${run} at ${new Date().toISOString()}\n`);
    const child = spawn(
      process.execPath,
      [
        ...node,
        '--import',
        pathToFileURL(join(DIST, 'bench', 'exit-with-parent.js')).href,
        join(DIST, 'apps', 'controller', 'src', 'main.js'),
      ],
      { cwd: ROOT, env, stdio: ['ignore', fd, fd, 'ipc'] },
    );
    closeSync(fd);
    return new ControllerProcess(child, logFile);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. Resolves with the time taken. */
  async stop(graceMs = 30_000): Promise<number> {
    const t0 = now();
    if (!this.running) return 0;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    return now() - t0;
  }
}

// ---- the agent fleet process -----------------------------------------------------------

export type Req = FleetRequest extends infer R
  ? R extends { id: number }
    ? Omit<R, 'id'>
    : never
  : never;

export class FleetProcess {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { ok: (v: unknown) => void; fail: (e: Error) => void }
  >();
  readonly exited: Promise<void>;
  private gone = false;

  constructor(logFile: string) {
    const fd = openSync(logFile, 'a');
    this.child = fork(join(DIST, 'bench', 'agent-fleet.js'), [], {
      cwd: ROOT,
      // 1,000 agents hold every host's state twice (desired + data plane).
      execArgv: ['--max-old-space-size=8192'],
      stdio: ['ignore', fd, fd, 'ipc'],
    });
    closeSync(fd);
    this.child.on('message', (m: FleetReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.ok(m.result);
      else p.fail(new Error(`agent fleet: ${m.error}`));
    });
    this.exited = new Promise((done) =>
      this.child.once('exit', (code, signal) => {
        this.gone = true;
        for (const p of this.pending.values())
          p.fail(
            new Error(`agent fleet exited (${signal ?? code}); see ${relative(ROOT, logFile)}`),
          );
        this.pending.clear();
        done();
      }),
    );
  }

  readonly child: ChildProcess;

  request<T>(r: Req): Promise<T> {
    if (this.gone) return Promise.reject(new Error('agent fleet is not running'));
    const id = this.nextId++;
    return new Promise<T>((ok, fail) => {
      this.pending.set(id, { ok: ok as (v: unknown) => void, fail });
      this.child.send({ ...r, id });
    });
  }

  async stop(): Promise<void> {
    if (this.gone) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await this.request({ op: 'stop' }).catch(() => this.child.kill('SIGKILL'));
    await this.exited;
    clearTimeout(timer);
  }
}

// ---- the REST client ---------------------------------------------------------------------

export interface Answer {
  ok: boolean;
  status: number;
  json: Record<string, unknown>;
  ms: number;
}

let apiBase = '';

/** Where `call` and `api` send requests: `http://127.0.0.1:<port>/api/v1`. */
export function setApiBase(base: string): void {
  apiBase = base;
}

export async function call(
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 300_000,
): Promise<Answer> {
  const t0 = now();
  const res = await fetch(apiBase + path, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { text };
  }
  return { ok: res.ok, status: res.status, json, ms: now() - t0 };
}

/** Like `call`, but a non-2xx answer is an error. */
export async function api(method: string, path: string, body?: unknown, timeoutMs?: number) {
  const a = await call(method, path, body, timeoutMs);
  if (!a.ok)
    throw new Error(`${method} ${path}: ${a.status} ${JSON.stringify(a.json).slice(0, 500)}`);
  return a;
}

export async function metricsText(): Promise<string> {
  const res = await fetch(apiBase + '/metrics', {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    signal: AbortSignal.timeout(60_000),
  });
  return res.text();
}

/** A Prometheus sample by name and labels, e.g. `metric(t, 'x_total', 'type="diff"')`; 0 if absent. */
export function metric(text: string, name: string, labels = ''): number {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${esc(name)}${labels ? `\\{${esc(labels)}\\}` : ''} (\\S+)$`, 'm').exec(
    text,
  );
  return m ? Number(m[1]) : 0;
}

export interface HostRow {
  name: string;
  inSync: boolean;
  agent: { connected: boolean; errors: unknown[] };
}

export async function listHosts(): Promise<HostRow[]> {
  const all: HostRow[] = [];
  let cursor: string | null = null;
  do {
    const a = await api(
      'GET',
      `/hosts?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    all.push(...(a.json.items as HostRow[]));
    cursor = a.json.nextCursor as string | null;
  } while (cursor);
  return all;
}

/** Polls `GET /hosts` until every host's agent is connected and in sync. */
export async function waitAllInSync(timeoutMs: number): Promise<number> {
  const t0 = now();
  for (;;) {
    const hosts = await listHosts();
    const lagging = hosts.filter((h) => !h.inSync || !h.agent.connected);
    if (lagging.length === 0) return now() - t0;
    if (now() - t0 > timeoutMs)
      throw new Error(
        `${lagging.length} hosts not in sync after ${timeoutMs} ms: ${lagging
          .slice(0, 10)
          .map((h) => h.name)
          .join(', ')}`,
      );
    await sleep(250);
  }
}
// ---- the layouts -------------------------------------------------------------------------

/** BENCH.md layouts: where instance i lives (spread: network n spans min(10, H) hosts). */
export function placement(shape: Shape, i: number): { n: number; host: number } {
  const { H, S } = shape;
  const n = i % S;
  if (shape.layout === 'peer') return { n, host: i % H };
  const span = Math.min(10, H);
  return { n, host: (n * span + (Math.floor(i / S) % span)) % H };
}

/** The body of instance i in a create or a bulk. */
export const instanceSpec = (shape: Shape, i: number) => {
  const { n, host } = placement(shape, i);
  return { name: `i${i}`, network: `n${n}`, host: `h${host}` };
};

// ---- the system ------------------------------------------------------------------------

export type Cleanups = (() => Promise<unknown>)[];

export interface System {
  embedded: EmbeddedDatabase;
  /** the benchmark's own connection to the database */
  db: pg.Client;
  port: number;
  /** the controller's environment (to start it again) */
  env: NodeJS.ProcessEnv;
  ctl: ControllerProcess;
  firstHealthyMs: number;
}

/** Polls the controller's /health until it answers (throws if it exits or times out). */
export async function waitHealthy(c: ControllerProcess, timeoutMs: number): Promise<number> {
  const start = now();
  for (;;) {
    if (!c.running) throw new Error(`the controller exited during start-up:\n${tail(c.logFile)}`);
    const ok = await fetch(apiBase + '/health', { signal: AbortSignal.timeout(2000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return now() - start;
    if (now() - start > timeoutMs)
      throw new Error(`the controller was not healthy after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/**
 * An embedded PostgreSQL in a temporary folder and the built controller on it, healthy.
 * Stopping the database and removing the folder are pushed on `cleanups`; stopping the
 * controller is the caller's (it may start it again).
 */
export async function startSystem(
  ctlLog: string,
  cleanups: Cleanups,
  node: string[] = [],
): Promise<System> {
  const tmp = mkdtempSync(join(tmpdir(), 'lattice-bench-'));
  chmodSync(tmp, 0o711); // the embedded PostgreSQL runs as 'postgres' and must traverse it
  cleanups.push(() => Promise.resolve(rmSync(tmp, { recursive: true, force: true })));
  const t0 = now();
  const embedded: EmbeddedDatabase = await startEmbeddedPostgres({ dataDir: join(tmp, 'db') });
  cleanups.push(() => embedded.stop());
  console.log(`embedded PostgreSQL on port ${embedded.port} in ${Math.round(now() - t0)} ms`);
  const db = new pg.Client({ connectionString: embedded.url });
  db.on('error', (e) => console.error(`benchmark's database connection: ${e.message}`));
  await db.connect();
  cleanups.push(() => db.end());

  const port = await freePort();
  setApiBase(`http://127.0.0.1:${port}/api/v1`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: embedded.url,
    LATTICE_DATA_DIR: join(tmp, 'controller'),
    LATTICE_ADMIN_TOKEN: ADMIN_TOKEN,
    LATTICE_LOG_LEVEL: process.env.LATTICE_LOG_LEVEL ?? 'warn',
    LATTICE_VLAN_POOL: VLAN_POOL,
  };
  const ctl = ControllerProcess.start(env, ctlLog, 1, node);
  let firstHealthyMs: number;
  try {
    firstHealthyMs = await waitHealthy(ctl, 120_000);
  } catch (e) {
    await ctl.stop();
    throw e;
  }
  console.log(`controller pid ${ctl.child.pid} healthy in ${Math.round(firstHealthyMs)} ms`);
  return { embedded, db, port, env, ctl, firstHealthyMs };
}

export interface PreloadStats {
  hostsMs: number;
  networksMs: number;
  agentsConnectedMs: number;
  instancesMs: number;
  instancesPerSec: number;
  allInSyncAfterMs: number;
}

export interface FleetOptions {
  heartbeatMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
}

/**
 * Preloads the shape: H hosts, S networks (cycling through the models), the agents of
 * every host (the fleet process, stopped by `cleanups`), then P instances (0 … P-1, placed
 * by the layout) in bulks of 1,000, and waits for every host in sync. `stats` is filled in
 * as it goes (a failed preload leaves what was measured).
 */
export async function preloadShape(
  shape: Shape,
  sys: System,
  fleetLog: string,
  fleetOptions: FleetOptions,
  cleanups: Cleanups,
  stats: PreloadStats,
): Promise<{ fleet: FleetProcess; hosts: FleetHost[] }> {
  const { H, S, P } = shape;
  let t = now();
  const hosts: FleetHost[] = new Array<FleetHost>(H);
  await pool(H, 8, async (j) => {
    const a = await api('POST', '/hosts', { name: `h${j}`, underlayIp: underlayOf(j) });
    hosts[j] = { name: `h${j}`, token: a.json.agentToken as string };
  });
  stats.hostsMs = Math.round(now() - t);
  console.log(`${H} hosts in ${stats.hostsMs} ms`);

  t = now();
  await pool(S, 8, async (n) => {
    await api('POST', '/networks', { name: `n${n}`, cidr: cidrOf(n), ...modelOf(n).body });
  });
  stats.networksMs = Math.round(now() - t);
  console.log(`${S} networks in ${stats.networksMs} ms`);

  t = now();
  const fleet = new FleetProcess(fleetLog);
  cleanups.push(() => fleet.stop());
  await fleet.request({
    op: 'start',
    options: { controller: `ws://127.0.0.1:${sys.port}/agent`, hosts, ...fleetOptions },
  });
  await fleet.request({ op: 'awaitAllApplied', timeoutMs: 300_000 });
  stats.agentsConnectedMs = Math.round(now() - t);
  console.log(
    `${H} agents (pid ${fleet.child.pid}) connected and synced in ${stats.agentsConnectedMs} ms`,
  );

  t = now();
  let lastReport = now();
  let next = 0;
  const bulks = Math.ceil(P / PRELOAD_BULK);
  for (let b = 0; b < bulks; b++) {
    const last = b === bulks - 1;
    const count = Math.min(PRELOAD_BULK, P - next);
    const instances = Array.from({ length: count }, () => instanceSpec(shape, next++));
    await api(
      'POST',
      `/instances/bulk${last ? '?wait=applied&timeoutMs=600000' : ''}`,
      { instances },
      900_000,
    );
    if (last || now() - lastReport > 15_000) {
      lastReport = now();
      const rate = next / ((now() - t) / 1000);
      console.log(
        `  ${next}/${P} instances, ${Math.round(rate)}/s` +
          (last ? '' : `, about ${Math.round((P - next) / rate)} s to go`),
      );
    }
  }
  stats.instancesMs = Math.round(now() - t);
  stats.instancesPerSec = round(P / (stats.instancesMs / 1000 || NaN), 1);
  const syncMs = await waitAllInSync(600_000);
  stats.allInSyncAfterMs = Math.round(syncMs);
  console.log(
    `${P} instances in ${stats.instancesMs} ms (${stats.instancesPerSec}/s), every host in sync ${Math.round(syncMs)} ms later`,
  );
  return { fleet, hosts };
}

/** What every benchmark's results carry for its run's bookkeeping. */
export interface RunResults {
  phase: string;
  finishedAt?: string | null;
  error?: string;
}

/**
 * One benchmark run's bookkeeping: its results file, what to clean up (in reverse order),
 * its phases, and how it ends — a failure, a signal or the time limit writes what was
 * measured (with the error), cleans up and exits 1.
 */
export class BenchRun {
  readonly cleanups: Cleanups = [];
  private finishing = false;

  constructor(
    private readonly name: string,
    private readonly stem: string,
    private readonly results: RunResults,
  ) {}

  /** Writes `bench/results/<stem>.json`; returns its path. */
  writeResults(): string {
    mkdirSync(RESULTS, { recursive: true });
    const file = join(RESULTS, `${this.stem}.json`);
    this.results.finishedAt = new Date().toISOString();
    writeFileSync(file, JSON.stringify(this.results, null, 2) + '\n');
    return file;
  }

  phase(name: string): void {
    this.results.phase = name;
    console.log(`\n== ${name}`);
  }

  /** Runs the cleanups (a signal meanwhile no longer aborts). */
  async finish(): Promise<void> {
    this.finishing = true;
    while (this.cleanups.length > 0)
      await this.cleanups.pop()!().catch((e: unknown) =>
        console.error(`cleanup: ${e instanceof Error ? e.message : String(e)}`),
      );
  }

  async abort(why: unknown): Promise<never> {
    if (this.finishing) return new Promise<never>(() => {});
    const message = why instanceof Error ? (why.stack ?? why.message) : String(why);
    console.error(`\n${this.name} stopped in phase "${this.results.phase}": ${message}`);
    this.results.error = message;
    try {
      console.error(`partial results written to ${relative(ROOT, this.writeResults())}`);
    } catch {
      // nothing more to do
    }
    await this.finish();
    process.exit(1);
  }

  /** Runs `main` under SIGINT/SIGTERM and a time limit (each aborts); exits 0 after it. */
  start(main: () => Promise<void>, maxMinutes: number): void {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.removeAllListeners(sig);
      process.on(sig, () => void this.abort(`interrupted (${sig})`));
    }
    const watchdog = setTimeout(
      () => void this.abort(new Error(`the run took longer than --max-minutes ${maxMinutes}`)),
      maxMinutes * 60_000,
    );
    watchdog.unref();
    main().then(
      () => {
        clearTimeout(watchdog);
        process.exit(0);
      },
      (e: unknown) => void this.abort(e),
    );
  }
}
