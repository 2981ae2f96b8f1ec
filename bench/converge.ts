/**
 * Convergence benchmark, the standard workload of BENCH.md: the built controller in a child
 * process of its own on an embedded PostgreSQL started here, and a fleet of memory-data-plane
 * agents (the project's own `Agent`, over real WebSockets) in another child process.
 *
 *   npm run bench:converge -- [--shape small|mid|large] [--layout spread|peer] [--cpu-prof] …
 *
 * The system is preloaded to the shape (hosts, networks cycling through the models,
 * instances in bulks of 1,000, every agent in sync) before anything is timed. Then:
 *   1. bulk creates (`?wait=applied`): converged instances/s, per-bulk p50/p99;
 *   2. concurrent single creates with `?wait=applied` at 10 and 50 clients;
 *   3. single create, move (non-block-based models) and delete → all affected agents
 *      applied, one at a time into the loaded system;
 *   4. controller RSS, PostgreSQL RSS/PSS (postmaster and children), database size;
 *   5. controller restart (SIGTERM, start again): → healthy, → every agent resynced, with
 *      the bytes and snapshots sent.
 * Prints a table and writes bench/results/converge-<shape>-<layout>.json (partial, with
 * the error, when a run fails). `--help` lists every option.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import type pg from 'pg';
import { benchCli } from './cli.js';
import { resourceEquals, type Resource } from '../libs/engine/src/index.js';
import {
  wallNow,
  type FleetStats,
  type HostResources,
  type ResyncReport,
} from './fleet-protocol.js';
import {
  api,
  call,
  ControllerProcess,
  FleetProcess,
  gitInfo,
  instanceSpec as specOf,
  latency,
  mb,
  metric,
  metricsText,
  modelOf,
  MODELS,
  now,
  placement as placementOf,
  PRELOAD_BULK,
  preloadShape,
  RESULTS,
  BenchRun,
  ROOT,
  round,
  SHAPES,
  VLAN_POOL,
  startSystem,
  waitAllInSync,
  waitHealthy,
  type Answer,
  type LatencyStats,
  type PreloadStats,
  type ShapeName,
} from './fleet-setup.js';
import { procMemory, treeMemory } from './procfs.js';

// ---- options -------------------------------------------------------------------------

const USAGE = `usage: npm run bench:converge -- [options]
  --shape small|mid|large     BENCH.md shape (H/S/P 100/100/10,000, 200/200/20,000, 1,000/1,000/100,000); default small
  --layout spread|peer        BENCH.md layout; default spread
  --hosts N --networks N --instances N   override the shape's H, S, P (the shape is then named custom-H-S-P)
  --bulks N                   timed bulk creates (phase 1); default 5
  --bulk-size N               instances per bulk (at most 1000); default 1000
  --concurrent N              creates per client count in phase 2; default 1000
  --clients LIST              client counts of phase 2; default 10,50
  --singles N                 create/move/delete rounds in phase 3; default 200
  --phase-seconds N           each timed phase stops issuing work after this; default 120
  --verify N                  hosts whose agent state is compared with the desired state at the end; default 5
  --heartbeat-ms N            agent heartbeat; default 10000 (the agent's own default)
  --backoff-min-ms N, --backoff-max-ms N   agent reconnect backoff; default 100, 2000
  --cpu-prof                  run the controller under node --cpu-prof (bench/results/profiles/)
  --max-minutes N             stop the whole run (cleanly, writing what was measured) after this; default 45
  --label TEXT                a note kept in the JSON (e.g. which code was measured)
  -h, --help, -V, --version`;

const { values: argv, usageError } = benchCli('bench:converge', USAGE, {
  shape: { type: 'string', default: 'small' },
  layout: { type: 'string', default: 'spread' },
  hosts: { type: 'string' },
  networks: { type: 'string' },
  instances: { type: 'string' },
  bulks: { type: 'string', default: '5' },
  'bulk-size': { type: 'string', default: '1000' },
  concurrent: { type: 'string', default: '1000' },
  clients: { type: 'string', default: '10,50' },
  singles: { type: 'string', default: '200' },
  'phase-seconds': { type: 'string', default: '120' },
  verify: { type: 'string', default: '5' },
  'heartbeat-ms': { type: 'string', default: '10000' },
  'backoff-min-ms': { type: 'string', default: '100' },
  'backoff-max-ms': { type: 'string', default: '2000' },
  'cpu-prof': { type: 'boolean', default: false },
  'max-minutes': { type: 'string', default: '45' },
  label: { type: 'string' },
});

function int(name: string, raw: string | undefined, min: number, max = Infinity): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    usageError(`--${name} must be an integer from ${min}${max < Infinity ? ` to ${max}` : ''}`);
  return n;
}

if (!(argv.shape in SHAPES)) usageError(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
if (argv.layout !== 'spread' && argv.layout !== 'peer')
  usageError('--layout must be spread or peer');
const base = SHAPES[argv.shape as ShapeName];
const H = argv.hosts === undefined ? base.H : int('hosts', argv.hosts, 1, 65_000);
const S = argv.networks === undefined ? base.S : int('networks', argv.networks, 1, 4096);
const P = argv.instances === undefined ? base.P : int('instances', argv.instances, 0);
const custom = H !== base.H || S !== base.S || P !== base.P;
const SHAPE = custom ? `custom-${H}-${S}-${P}` : argv.shape;
const LAYOUT = argv.layout as 'spread' | 'peer'; // checked just above
const opt = {
  bulks: int('bulks', argv.bulks, 0),
  bulkSize: int('bulk-size', argv['bulk-size'], 1, 1000),
  concurrent: int('concurrent', argv.concurrent, 0),
  clients: argv.clients.split(',').map((c) => int('clients', c.trim(), 1, 1000)),
  singles: int('singles', argv.singles, 0),
  phaseSeconds: int('phase-seconds', argv['phase-seconds'], 1),
  verify: int('verify', argv.verify, 0),
  heartbeatMs: int('heartbeat-ms', argv['heartbeat-ms'], 100),
  backoffMinMs: int('backoff-min-ms', argv['backoff-min-ms'], 1),
  backoffMaxMs: int('backoff-max-ms', argv['backoff-max-ms'], 1),
  cpuProf: argv['cpu-prof'],
  maxMinutes: int('max-minutes', argv['max-minutes'], 1),
};

/** Network n spans this many hosts in the spread layout. */
const SPAN = Math.min(10, H);
const SHAPE_SPEC = { H, S, P, layout: LAYOUT };
const PROFILES = join(RESULTS, 'profiles');
const STEM = `converge-${SHAPE}-${LAYOUT}`;
const cpuProf = (run: number) =>
  opt.cpuProf
    ? ['--cpu-prof', '--cpu-prof-dir', PROFILES, '--cpu-prof-name', `${STEM}-${run}.cpuprofile`]
    : [];

// ---- the workload ----------------------------------------------------------------------

const placement = (i: number) => placementOf(SHAPE_SPEC, i);

/** Another host for instance i: the next host of its network's span (peer: the next host). */
function moveTarget(i: number): number {
  const { n, host } = placement(i);
  if (LAYOUT === 'peer' || SPAN === 1) return (host + 1) % H;
  return (n * SPAN + ((Math.floor(i / S) + 1) % SPAN)) % H;
}

let nextInstance = 0;
const instanceSpec = (i: number) => specOf(SHAPE_SPEC, i);

// ---- measurements ----------------------------------------------------------------------

interface Resources {
  controller: {
    rssMB: number;
    peakRssMB: number;
    pssMB: number;
    /** V8 heap in use and reserved, from the controller's /metrics. */
    heapUsedMB: number;
    heapTotalMB: number;
  } | null;
  postgres: { rssMB: number; pssMB: number; processes: number } | null;
  databaseMB: number;
  fleetRssMB: number;
}

async function measureResources(
  ctl: ControllerProcess,
  db: pg.Client,
  fleet: FleetProcess,
): Promise<Resources> {
  const c = ctl.child.pid ? procMemory(ctl.child.pid) : undefined;
  const { rows } = await db.query<{ pid: number; size: string }>(
    'SELECT pg_backend_pid() AS pid, pg_database_size(current_database()) AS size',
  );
  // The postmaster is the parent of every backend, ours included.
  const stat = readFileSync(`/proc/${rows[0].pid}/stat`, 'utf8');
  const postmaster = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  const p = treeMemory(postmaster);
  const f = await fleet.request<FleetStats>({ op: 'stats' });
  const m = await metricsText();
  const heapUsedMB = mb(metric(m, 'lattice_process_nodejs_heap_size_used_bytes'));
  const heapTotalMB = mb(metric(m, 'lattice_process_nodejs_heap_size_total_bytes'));
  return {
    controller: c
      ? { rssMB: mb(c.rss), peakRssMB: mb(c.hwm), pssMB: mb(c.pss), heapUsedMB, heapTotalMB }
      : null,
    postgres: { rssMB: mb(p.rss), pssMB: mb(p.pss), processes: p.processes },
    databaseMB: mb(Number(rows[0].size)),
    fleetRssMB: mb(f.rssBytes),
  };
}

// ---- the run -----------------------------------------------------------------------------

interface BulkResult {
  bulks: number;
  instances: number;
  errors: number;
  firstError?: string;
  convergedPerSec: number;
  bulkMs: LatencyStats;
  waitAppliedAfterCommitMs: LatencyStats;
}
interface LevelResult {
  clients: number;
  creates: number;
  errors: number;
  firstError?: string;
  convergedPerSec: number;
  latencyMs: LatencyStats;
}
interface SingleResult {
  createMs: LatencyStats;
  moveMs: LatencyStats;
  deleteMs: LatencyStats;
  errors: number;
  firstError?: string;
}
interface RestartResult {
  shutdownMs: number;
  healthyMs: number;
  allResyncedMs: number;
  medianAgentResyncedMs: number;
  firstAgentResyncedMs: number;
  agentsResynced: number;
  agentsMissing: number;
  hostsInSyncAfterResyncMs: number;
  agentsReceived: { bytes: number; snapshots: number; diffs: number };
  resourceErrors: number;
  controllerSent: {
    diffFrames: number;
    diffBytes: number;
    snapshotFrames: number;
    snapshotBytes: number;
    resyncsByDiff: number;
    resyncsBySnapshot: number;
  };
}
interface Results {
  [k: string]: unknown;
  phase: string;
  complete: boolean;
  finishedAt: string | null;
  preload?: Record<string, number>;
  bulk?: BulkResult;
  concurrent?: LevelResult[];
  single?: SingleResult;
  resources?: Resources;
  diffs?: { frames: number; bytes: number; bytesPerDiff: number; snapshots: number };
  restart?: RestartResult;
}

const results: Results = {
  benchmark: 'converge',
  shape: { name: SHAPE, hosts: H, networks: S, instances: P, span: LAYOUT === 'spread' ? SPAN : 1 },
  layout: LAYOUT,
  models: MODELS.map((m) => m.label),
  counts: {
    preloadBulk: PRELOAD_BULK,
    bulks: opt.bulks,
    bulkSize: opt.bulkSize,
    concurrentPerLevel: opt.concurrent,
    clients: opt.clients,
    singles: opt.singles,
    phaseSeconds: opt.phaseSeconds,
  },
  options: {
    heartbeatMs: opt.heartbeatMs,
    backoffMinMs: opt.backoffMinMs,
    backoffMaxMs: opt.backoffMaxMs,
    cpuProf: opt.cpuProf,
    vlanPool: VLAN_POOL,
    networkCidr: '/20 of 10.0.0.0/8 each; routed blockPrefixLen 26',
    underlay: '198.18.0.0/15',
  },
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  cpus: cpus().length,
  memoryMB: mb(totalmem()),
  git: gitInfo(),
  label: argv.label ?? null,
  startedAt: new Date().toISOString(),
  finishedAt: null,
  complete: false,
  phase: 'setup',
};

const run = new BenchRun('bench:converge', STEM, results);
const { cleanups } = run;
const phase = (name: string) => run.phase(name);
const writeResults = () => run.writeResults();

async function main(): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  if (opt.cpuProf) mkdirSync(PROFILES, { recursive: true });
  const ctlLog = join(RESULTS, `${STEM}.controller.log`);
  const fleetLog = join(RESULTS, `${STEM}.fleet.log`);
  writeFileSync(ctlLog, '');
  writeFileSync(fleetLog, '');
  console.log(
    `bench:converge shape ${SHAPE} (${H} hosts, ${S} networks, ${P} instances), layout ${LAYOUT}, ` +
      `node ${process.version}, ${cpus().length} cpus`,
  );

  // -- database and controller
  const sys = await startSystem(ctlLog, cleanups, cpuProf(1));
  const { db, env } = sys;
  let ctl = sys.ctl;
  cleanups.push(() => ctl.stop());

  // -- preload: hosts, networks, agents, instances
  phase('preload');
  const preload: PreloadStats = {
    hostsMs: 0,
    networksMs: 0,
    agentsConnectedMs: 0,
    instancesMs: 0,
    instancesPerSec: 0,
    allInSyncAfterMs: 0,
  };
  results.preload = { ...preload };
  const { fleet } = await preloadShape(
    SHAPE_SPEC,
    sys,
    fleetLog,
    {
      heartbeatMs: opt.heartbeatMs,
      backoffMinMs: opt.backoffMinMs,
      backoffMaxMs: opt.backoffMaxMs,
    },
    cleanups,
    preload,
  ).finally(() => (results.preload = { ...preload }));
  nextInstance = P;
  results.resourcesAfterPreload = await measureResources(ctl, db, fleet);
  console.log('resources after preload', results.resourcesAfterPreload);
  const phaseDeadline = () => now() + opt.phaseSeconds * 1000;

  // -- 1. bulk creates
  phase('1. bulk creates (?wait=applied)');
  {
    const lat: number[] = [];
    const appliedIn: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    const deadline = phaseDeadline();
    const start = now();
    let created = 0;
    for (let b = 0; b < opt.bulks && now() < deadline; b++) {
      const instances = Array.from({ length: opt.bulkSize }, () => instanceSpec(nextInstance++));
      const a = await call('POST', '/instances/bulk?wait=applied&timeoutMs=300000', { instances });
      if (a.ok) {
        lat.push(a.ms);
        created += instances.length;
        if (typeof a.json.appliedInMs === 'number') appliedIn.push(a.json.appliedInMs);
      } else {
        errors++;
        firstError ??= `${a.status} ${JSON.stringify(a.json).slice(0, 300)}`;
      }
      console.log(`  bulk ${b + 1}: ${a.status} in ${Math.round(a.ms)} ms`);
    }
    const ms = now() - start;
    results.bulk = {
      bulks: lat.length,
      instances: created,
      errors,
      firstError,
      convergedPerSec: round(created / (ms / 1000), 1),
      bulkMs: latency(lat),
      waitAppliedAfterCommitMs: latency(appliedIn),
    };
  }

  // -- 2. concurrent single creates
  phase('2. concurrent single creates (?wait=applied)');
  {
    const levels: LevelResult[] = [];
    for (const clients of opt.clients) {
      const lat: number[] = [];
      let errors = 0;
      let firstError: string | undefined;
      let issued = 0;
      const deadline = phaseDeadline();
      const start = now();
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (issued < opt.concurrent && now() < deadline) {
            issued++;
            const a = await call(
              'POST',
              '/instances?wait=applied&timeoutMs=60000',
              instanceSpec(nextInstance++),
            );
            if (a.ok) lat.push(a.ms);
            else {
              errors++;
              firstError ??= `${a.status} ${JSON.stringify(a.json).slice(0, 300)}`;
            }
          }
        }),
      );
      const ms = now() - start;
      const level: LevelResult = {
        clients,
        creates: lat.length,
        errors,
        firstError,
        convergedPerSec: round(lat.length / (ms / 1000), 1),
        latencyMs: latency(lat),
      };
      levels.push(level);
      console.log(
        `  ${clients} clients: ${lat.length} creates in ${Math.round(ms)} ms, ${level.convergedPerSec}/s, p50 ${level.latencyMs.p50} ms, p99 ${level.latencyMs.p99} ms${errors ? `, ${errors} errors` : ''}`,
      );
    }
    results.concurrent = levels;
  }

  // -- 3. single create, move, delete → all affected agents applied
  phase('3. single create / move / delete → all applied');
  {
    const lat = { create: [] as number[], move: [] as number[], delete: [] as number[] };
    let errors = 0;
    let firstError: string | undefined;
    const deadline = phaseDeadline();
    const check = (a: Answer, what: string) => {
      if (a.ok) return true;
      errors++;
      firstError ??= `${what}: ${a.status} ${JSON.stringify(a.json).slice(0, 300)}`;
      return false;
    };
    for (let k = 0; k < opt.singles && now() < deadline; k++) {
      const i = nextInstance++;
      const spec = instanceSpec(i);
      const c = await call('POST', '/instances?wait=applied&timeoutMs=30000', spec);
      if (!check(c, 'create')) continue;
      lat.create.push(c.ms);
      if (!modelOf(placement(i).n).blocks) {
        const m = await call('PATCH', `/instances/${spec.name}?wait=applied&timeoutMs=30000`, {
          host: `h${moveTarget(i)}`,
        });
        if (check(m, 'move')) lat.move.push(m.ms);
      }
      const d = await call('DELETE', `/instances/${spec.name}?wait=applied&timeoutMs=30000`);
      if (check(d, 'delete')) lat.delete.push(d.ms);
    }
    results.single = {
      createMs: latency(lat.create),
      moveMs: latency(lat.move),
      deleteMs: latency(lat.delete),
      errors,
      firstError,
    };
    console.log(
      `  create p50 ${latency(lat.create).p50} / p99 ${latency(lat.create).p99} ms, ` +
        `move p50 ${latency(lat.move).p50} / p99 ${latency(lat.move).p99} ms, ` +
        `delete p50 ${latency(lat.delete).p50} / p99 ${latency(lat.delete).p99} ms`,
    );
  }

  // -- 4. memory and database size, diff sizes
  phase('4. memory and database size');
  results.resources = await measureResources(ctl, db, fleet);
  console.log(results.resources);
  {
    const m = await metricsText();
    const frames = metric(m, 'lattice_agent_frames_sent_total', 'type="diff"');
    const bytes = metric(m, 'lattice_agent_bytes_sent_total', 'type="diff"');
    results.diffs = {
      frames,
      bytes,
      bytesPerDiff: round(bytes / (frames || NaN), 1),
      snapshots: metric(m, 'lattice_agent_frames_sent_total', 'type="snapshot"'),
    };
  }
  results.instancesAtEnd = Number(
    (await db.query<{ n: string }>('SELECT count(*) AS n FROM instances')).rows[0].n,
  );

  // -- 5. controller restart
  phase('5. controller restart → healthy → every agent resynced');
  {
    await waitAllInSync(300_000);
    await fleet.request({ op: 'markRestart' });
    const shutdownMs = await ctl.stop();
    console.log(`  controller stopped (SIGTERM) in ${Math.round(shutdownMs)} ms`);
    const start = wallNow();
    ctl = ControllerProcess.start(env, ctlLog, 2, cpuProf(2));
    const healthyMs = await waitHealthy(ctl, 300_000);
    console.log(`  healthy in ${Math.round(healthyMs)} ms`);
    const r = await fleet.request<ResyncReport>({ op: 'awaitResync', timeoutMs: 300_000 });
    const m = await metricsText();
    const inSyncMs = await waitAllInSync(300_000).catch((e: unknown) => {
      console.error(`  ${e instanceof Error ? e.message : String(e)}`);
      return NaN;
    });
    results.restart = {
      shutdownMs: Math.round(shutdownMs),
      healthyMs: Math.round(healthyMs),
      allResyncedMs: Math.round(r.firstAppliedAt.max - start),
      medianAgentResyncedMs: Math.round(r.firstAppliedAt.p50 - start),
      firstAgentResyncedMs: Math.round(r.firstAppliedAt.min - start),
      agentsResynced: r.resynced,
      agentsMissing: r.missing,
      hostsInSyncAfterResyncMs: Math.round(inSyncMs),
      agentsReceived: { bytes: r.bytes, snapshots: r.snapshots, diffs: r.diffs },
      resourceErrors: r.resourceErrors,
      controllerSent: {
        diffFrames: metric(m, 'lattice_agent_frames_sent_total', 'type="diff"'),
        diffBytes: metric(m, 'lattice_agent_bytes_sent_total', 'type="diff"'),
        snapshotFrames: metric(m, 'lattice_agent_frames_sent_total', 'type="snapshot"'),
        snapshotBytes: metric(m, 'lattice_agent_bytes_sent_total', 'type="snapshot"'),
        resyncsByDiff: metric(m, 'lattice_agent_resyncs_total', 'kind="diff"'),
        resyncsBySnapshot: metric(m, 'lattice_agent_resyncs_total', 'kind="snapshot"'),
      },
    };
    console.log(results.restart);
  }

  // -- the agents hold what the controller says they should
  phase('verify');
  {
    const mismatches: {
      host: string;
      desired: number;
      agent: number;
      missing: string[];
      differing: string[];
      extra: string[];
    }[] = [];
    const picks = Array.from({ length: Math.min(opt.verify, H) }, (_, k) =>
      Math.floor((k * H) / Math.min(opt.verify, H)),
    );
    for (const j of picks) {
      const want = (await api('GET', `/hosts/h${j}/desired-state`)).json.resources as Resource[];
      const got = await fleet.request<HostResources>({ op: 'resources', host: `h${j}` });
      const have = new Map(got.resources.map((r) => [r.key, r as Resource]));
      const wanted = new Set<string>(want.map((r) => r.key));
      const missing = want.filter((r) => !have.has(r.key)).map((r) => r.key);
      const differing = want
        .filter((r) => have.has(r.key) && !resourceEquals(have.get(r.key)!, r))
        .map((r) => r.key);
      const extra = [...have.keys()].filter((k) => !wanted.has(k));
      if (missing.length + differing.length + extra.length > 0)
        mismatches.push({
          host: `h${j}`,
          desired: want.length,
          agent: have.size,
          missing: missing.slice(0, 5),
          differing: differing.slice(0, 5),
          extra: extra.slice(0, 5),
        });
    }
    const f = await fleet.request<FleetStats>({ op: 'stats' });
    results.verify = {
      hostsCompared: picks.length,
      mismatches,
      agentResourceErrors: f.resourceErrors,
      agentErrorFrames: f.errorFrames,
    };
    console.dir(results.verify, { depth: 4 });
  }

  results.phase = 'done';
  results.complete = true;
  printTable();
  console.log(`\nwrote ${relative(ROOT, writeResults())}`);
  if (opt.cpuProf) console.log(`CPU profiles of the controller in ${relative(ROOT, PROFILES)}/`);
  await run.finish();
  if (opt.cpuProf)
    results.profiles = [1, 2].map((r) => `bench/results/profiles/${STEM}-${r}.cpuprofile`);
  if (opt.cpuProf) writeResults(); // the second profile is written when the controller exits
}

function printTable(): void {
  const { bulk, concurrent, single, resources: res, diffs, restart, preload } = results;
  if (!bulk || !concurrent || !single || !res || !diffs || !restart || !preload) return;
  const lat = (l: LatencyStats) => `p50 ${l.p50} ms, p99 ${l.p99} ms (n ${l.n})`;
  const sent = restart.controllerSent;
  const rows: [string, string][] = [
    [
      'bulk creates converged',
      `${bulk.convergedPerSec} instances/s; one bulk of ${opt.bulkSize}: ${lat(bulk.bulkMs)}`,
    ],
    ['  ?wait=applied after the commit', lat(bulk.waitAppliedAfterCommitMs)],
    ...concurrent.map((c): [string, string] => [
      `${c.clients} clients, single creates`,
      `${c.convergedPerSec} converged creates/s, ${lat(c.latencyMs)}${c.errors ? `, ${c.errors} errors` : ''}`,
    ]),
    ['single create → all applied', lat(single.createMs)],
    ['single move → all applied', lat(single.moveMs)],
    ['single delete → all applied', lat(single.deleteMs)],
    [
      'controller RSS + PostgreSQL RSS',
      `${res.controller?.rssMB} MB (peak ${res.controller?.peakRssMB}, V8 heap ${res.controller?.heapUsedMB} of ${res.controller?.heapTotalMB}) + ${res.postgres?.rssMB} MB ` +
        `(PSS ${res.postgres?.pssMB} MB, ${res.postgres?.processes} processes)`,
    ],
    ['database size', `${res.databaseMB} MB`],
    ['bytes per diff', `${diffs.bytesPerDiff} (${diffs.frames} diffs)`],
    [
      'controller restart',
      `healthy ${restart.healthyMs} ms, every agent resynced ${restart.allResyncedMs} ms ` +
        `(median agent ${restart.medianAgentResyncedMs} ms)`,
    ],
    [
      '  resync traffic',
      `${sent.diffBytes + sent.snapshotBytes} bytes sent, ${sent.snapshotFrames} snapshots, ${sent.diffFrames} diffs`,
    ],
    [
      'preload',
      `${preload.instancesPerSec} instances/s (${P} in ${round(preload.instancesMs / 1000, 1)} s)`,
    ],
    ['agent fleet RSS', `${res.fleetRssMB} MB`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  console.log(`\nconverge ${SHAPE} (${H} hosts, ${S} networks, ${P} instances), ${LAYOUT} layout`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
}

run.start(main, opt.maxMinutes);
