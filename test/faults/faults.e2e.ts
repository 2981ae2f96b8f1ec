import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createTestDatabase } from '../support/controller.js';
import {
  checkDatabase,
  checkDesiredStates,
  resolveUnknowns,
  waitConverged,
} from './fault-checks.js';
import {
  agentErrors,
  appliedLines,
  Cluster,
  resyncCounters,
  waitForCommitter,
} from './fault-cluster.js';
import { PrivatePostgres, type PostgresFault } from './fault-postgres.js';
import { TcpProxy } from './fault-proxy.js';
import { describeSummary, newSummary } from './fault-summary.js';
import { Rng, sleep, Workload, type OpOutcome, type WorkloadNetwork } from './fault-workload.js';

/**
 * Faults and trust: real processes, really killed while writes are in flight.
 *
 * 1. the controller, kill -9 at random moments during concurrent creates, bulks, moves
 *    and deletes, then restarted;
 * 2. PostgreSQL (a private server, never the run's shared one), killed -9 or restarted at
 *    random moments, under a controller that must stay up and answer 503 meanwhile;
 * 3. an agent, kill -9 while it applies a large change, restarted on its state directory;
 * 4. the network between an agent and the controller, blackholed and then reset.
 *
 * After each fault: no acknowledged write lost, no half-made object, the revision log
 * gap-free and equal to the tables, every host's desired state equal to a recompute from
 * the database (no phantom), every agent converged to it — those that were in sync
 * resuming with a diff, not a snapshot. Random choices come from one seed (logged;
 * LATTICE_FAULT_SEED=<seed> replays them). A summary goes to the console and to
 * bench/results/faults-summary.json.
 */
const SEED = process.env.LATTICE_FAULT_SEED
  ? Number(process.env.LATTICE_FAULT_SEED)
  : Math.floor(Math.random() * 2 ** 31);
const rng = new Rng(SEED);
const root = mkdtempSync(join(tmpdir(), 'lattice-faults-'));
const started = Date.now();

const NETWORKS: WorkloadNetwork[] = [
  { name: 'ov', movable: true },
  { name: 'fb', movable: true },
  { name: 'vl', movable: true },
  { name: 'rt', movable: false },
];

const summary = newSummary(SEED, started);

const clusters: Cluster[] = [];
const workloads: Workload[] = [];
let pgServer: PrivatePostgres | undefined;
let pgDir: string | undefined;
let proxy: TcpProxy | undefined;

afterAll(async () => {
  await Promise.all(workloads.map((w) => w.stop().catch(() => undefined)));
  await Promise.all(clusters.map((c) => c.stop().catch(() => undefined)));
  await proxy?.close().catch(() => undefined);
  await pgServer?.stop().catch(() => undefined);
  summary.durationMs = Date.now() - started;
  mkdirSync('bench/results', { recursive: true });
  // every controller's log, for a look at what it said while things broke
  for (const [k, c] of clusters.entries()) {
    const lines = c.controllers.flatMap((p, n) => [`---- controller start ${n + 1}`, ...p.output]);
    writeFileSync(`bench/results/faults-controller-${'ab'[k]}.log`, lines.join('\n') + '\n');
    summary.controllerLogs[`${'ab'[k]}`] = {
      starts: c.controllers.length,
      // (JSON lines, or the pretty format)
      errors: lines.filter((l) => /"level":"(error|fatal)"|\bERROR\b/.test(l)).length,
      warnings: lines.filter((l) => /"level":"warn"|\bWARN\b/.test(l)).length,
    };
  }
  writeFileSync('bench/results/faults-summary.json', JSON.stringify(summary, null, 2) + '\n');
  console.log(`${describeSummary(summary)}\n(details: bench/results/faults-summary.json)`);
  rmSync(root, { recursive: true, force: true });
  if (pgDir) rmSync(pgDir, { recursive: true, force: true });
}, 60_000);

console.log(`fault suite seed ${SEED} (LATTICE_FAULT_SEED=${SEED} replays its random choices)`);

async function sql<T = any>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** Fails with every problem listed (and the controller's last lines). */
function expectNoProblems(what: string, problems: string[], c: Cluster): void {
  if (problems.length === 0) return;
  summary.failures.push(...problems.map((p) => `${what}: ${p}`));
  throw new Error(
    `${what}:\n  ${problems.join('\n  ')}\ncontroller log:\n${c.controller.output.slice(-30).join('\n')}`,
  );
}

/** The statuses of a set of outcomes, counted. */
function statusCounts(os: readonly { status: number }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of os) out[o.status] = (out[o.status] ?? 0) + 1;
  return out;
}

/** Requests without an answer, by error (ECONNREFUSED: never delivered). */
function errorCounts(os: readonly OpOutcome[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of os) if (o.status === 0) out[o.error!] = (out[o.error!] ?? 0) + 1;
  return out;
}

/** Hosts, networks (one per model family the workload uses), a router and seed instances. */
async function setupTopology(c: Cluster, workHosts: string[], quietHosts: string[]) {
  let ip = 10;
  for (const h of [...workHosts, ...quietHosts]) await c.addHost(h, `192.0.2.${ip++}`);
  const api = c.api;
  await api.ok('POST', '/networks', { name: 'ov', model: 'overlay', cidr: '10.80.0.0/20' });
  await api.ok('POST', '/networks', { name: 'fb', model: 'fabric', cidr: '10.81.0.0/21' });
  await api.ok('POST', '/networks', { name: 'vl', model: 'vlan', cidr: '10.82.0.0/21' });
  await api.ok('POST', '/networks', {
    name: 'rt',
    model: 'routed',
    routing: 'static',
    cidr: '10.90.0.0/19',
    blockPrefixLen: 27,
  });
  await api.ok('POST', '/networks', { name: 'quiet', model: 'bridge', cidr: '10.99.0.0/24' });
  await api.ok('POST', '/routers', { name: 'r1', networks: ['ov', 'rt'] });
  for (const h of workHosts)
    await api.ok('POST', '/instances', { name: `seed-${h}`, network: 'ov', host: h });
  for (const h of quietHosts)
    for (const k of [1, 2])
      await api.ok('POST', '/instances', { name: `still-${h}-${k}`, network: 'quiet', host: h });
}

/** The last revision each agent printed as applied. */
function lastApplied(c: Cluster): Map<string, number> {
  const out = new Map<string, number>();
  for (const [h, a] of c.agents) out.set(h, Math.max(0, ...appliedLines(a).map((l) => l.revision)));
  return out;
}

async function desiredRevisions(c: Cluster): Promise<Map<string, number>> {
  const rows = await sql<{ name: string; r: string }>(
    c.databaseUrl,
    'SELECT name, desired_revision AS r FROM hosts',
  );
  return new Map(rows.map((r) => [r.name, Number(r.r)]));
}

/** Waits until each agent printed an applied line after `marks`; returns the first of each. */
async function firstResync(
  c: Cluster,
  marks: Map<string, number>,
  timeoutMs = 15_000,
): Promise<Map<string, 'diff' | 'snapshot'>> {
  const out = new Map<string, 'diff' | 'snapshot'>();
  await Promise.all(
    [...c.agents].map(async ([h, a]) => {
      await a.waitFor(/applied revision/, timeoutMs, marks.get(h) ?? 0);
      out.set(h, appliedLines(a, marks.get(h) ?? 0)[0].via);
    }),
  );
  return out;
}

/** Waits (up to a second) until at least two requests are in flight: the moment to strike. */
async function whileIdle(w: Workload): Promise<void> {
  const deadline = Date.now() + 1000;
  while (w.inFlight < 2 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
}

/** Commit batches the controller saw fail after planning (it recomputes after each). */
const lostBatches = (c: Cluster): number[] =>
  c.controller.output
    .flatMap((l) => /revision (\d+) did not commit/.exec(l)?.slice(1) ?? [])
    .map(Number);

const outputMarks = (c: Cluster) => new Map([...c.agents].map(([h, a]) => [h, a.output.length]));

// ---- cluster A: controller kills, agent kills, network drops (the run's shared server) ----

const WORK_HOSTS = ['w1', 'w2', 'w3', 'w4', 'p1'];
const QUIET_HOSTS = ['b1'];
let a: Cluster;
let wa: Workload;

beforeAll(async () => {
  a = await Cluster.start(join(root, 'a'), await createTestDatabase(), (c) => clusters.push(c));
  await setupTopology(a, WORK_HOSTS, QUIET_HOSTS);
  proxy = await TcpProxy.start(a.port);
  for (const h of [...WORK_HOSTS, ...QUIET_HOSTS])
    a.startAgent(h, h === 'p1' ? proxy.url : undefined);
  await waitConverged(a.api, a.agents);
  wa = new Workload(a.api, rng, {
    prefix: 'ka',
    networks: NETWORKS,
    hosts: WORK_HOSTS,
    bulkSize: [5, 30],
    thinkMs: [0, 15],
  });
  workloads.push(wa);
}, 60_000);

describe('controller kill -9', () => {
  it('at random moments of concurrent writes loses no acknowledged write and leaves nothing half made', async () => {
    const ROUNDS = 5;
    for (let round = 1; round <= ROUNDS; round++) {
      const keepWriting = rng.next() < 0.5;
      const before = wa.outcomes.length;
      wa.start(6);
      await sleep(rng.int(300, 1500));
      await whileIdle(wa);
      // every other round: kill while a batch is inside its transaction
      const aimed = round % 2 === 0;
      const committer = aimed ? await waitForCommitter(a.databaseUrl, 1000) : undefined;
      const inFlight = wa.inFlight;
      await a.controller.kill9();
      summary.controllerKill.injected++;
      const killedAt = Date.now();
      if (!keepWriting) await wa.stop();
      await sleep(300); // the agents see the socket go
      const desired = await desiredRevisions(a);
      const applied = lastApplied(a);
      const inSync = new Set(
        [...a.agents.keys()].filter((h) => applied.get(h)! >= desired.get(h)!),
      );
      const marks = outputMarks(a);
      const restartMs = await a.startController();
      if (keepWriting) {
        await sleep(rng.int(300, 1000));
        await wa.stop();
      }
      const resync = await firstResync(a, marks);
      const problems = [
        ...(await checkDatabase(a.databaseUrl, wa)),
        ...(await checkDesiredStates(a.api, a.databaseUrl)),
        ...agentErrors(a),
      ];
      const outcomes = wa.outcomes.slice(before);
      const unexpected = outcomes.filter((o) => ![200, 201, 0, 504].includes(o.status));
      for (const o of unexpected)
        problems.push(`${o.kind} answered ${o.status} ${o.error ?? ''} around a controller kill`);
      // Agents that were in sync resume with a diff (the bystander always: nothing changed).
      for (const h of a.agents.keys()) {
        const mustDiff = QUIET_HOSTS.includes(h) || (!keepWriting && inSync.has(h));
        if (mustDiff && resync.get(h) !== 'diff')
          problems.push(`agent ${h} was in sync but resumed with a ${resync.get(h)}`);
      }
      expectNoProblems(`controller kill ${round}`, problems, a);
      const convergeMs = await waitConverged(a.api, a.agents);
      const counters = await resyncCounters(a.api);
      const unknown = await resolveUnknowns(a.databaseUrl, wa);
      if (!keepWriting) expect(counters.snapshot).toBeLessThanOrEqual(a.agents.size - inSync.size);
      summary.controllerKill.rounds.push({
        round,
        writesDuringRestart: keepWriting,
        requestsInFlightAtKill: inFlight,
        killedInACommitBatch: aimed ? committer !== undefined : undefined,
        statuses: statusCounts(outcomes),
        unanswered: errorCounts(outcomes),
        restartToHealthyMs: restartMs,
        downMs: Date.now() - killedAt,
        agentsInSyncAtKill: inSync.size,
        resumedWith: Object.fromEntries(resync),
        controllerResyncs: counters,
        unansweredWrites: unknown,
        convergedMsAfterChecks: convergeMs,
      });
    }
    const acked = [...wa.instances.values()].filter((i) => i.exists === 'yes').length;
    expect(acked).toBeGreaterThan(50);
  }, 120_000);
});

describe('agent kill -9 mid-apply', () => {
  it('restarts on its state directory and converges to its desired state', async () => {
    const target = 'w1';
    for (let round = 1; round <= 3; round++) {
      const agent = a.agents.get(target)!;
      const mark = agent.output.length;
      let revision: number;
      let change: string;
      if (round % 2 === 1) {
        // one large diff: a bulk whose every instance is remote to w1 (FDB + neighbour
        // each), killed at a random moment around its arrival
        change = 'bulk of 400 remote instances';
        const items = Array.from({ length: 400 }, (_, k) => ({
          name: `big-${round}-${k}`,
          network: 'ov',
          host: k % 2 ? 'w2' : 'w3',
        }));
        const bulk = a.api.ok('POST', '/instances/bulk', { instances: items });
        await sleep(rng.int(20, 250));
        agent.proc.kill('SIGKILL');
        revision = (await bulk).revision as number;
      } else {
        // a stream of diffs: concurrent single creates, killed somewhere inside it
        change = '40 concurrent single creates';
        const burst = Array.from({ length: 40 }, (_, k) =>
          a.api.ok('POST', '/instances', {
            name: `burst-${round}-${k}`,
            network: 'ov',
            host: 'w2',
          }),
        );
        await sleep(rng.int(5, 60));
        agent.proc.kill('SIGKILL');
        const done = await Promise.all(burst);
        revision = Math.max(...done.map((d) => d.revision as number));
      }
      await agent.stop();
      summary.agentKill.injected++;
      const printed = appliedLines(agent, mark).map((l) => l.revision);
      const lastPrinted = Math.max(0, ...appliedLines(agent).map((l) => l.revision));
      const restarted = a.startAgent(target);
      const line = await restarted.waitFor(/restored revision/, 10_000);
      const restoredRevision = Number(/restored revision (\d+)/.exec(line)![1]);
      // what it acknowledged (printed after the ack was sent) survived the kill
      expect(restoredRevision).toBeGreaterThanOrEqual(lastPrinted);
      const landed = printed.some((r) => r >= revision)
        ? 'after it acknowledged the change'
        : restoredRevision >= revision
          ? 'after it applied and journalled the change, before its ack was printed'
          : printed.length > 0 || restoredRevision > lastPrinted
            ? 'in the middle of the change'
            : 'before the change reached it';
      const convergeMs = await waitConverged(a.api, a.agents);
      summary.agentKill.rounds.push({
        round,
        change,
        revision,
        killed: landed,
        restoredRevision,
        lastAcknowledgedBeforeKill: lastPrinted,
        resumedWith: appliedLines(restarted)[0]?.via,
        convergedMs: convergeMs,
      });
    }
    expectNoProblems(
      'agent kill',
      [...(await checkDesiredStates(a.api, a.databaseUrl)), ...agentErrors(a)],
      a,
    );
  }, 60_000);
});

describe('network dropped between an agent and the controller', () => {
  it('is detected on both sides, and the agent reconnects and converges', async () => {
    const host = 'p1';
    const agent = a.agents.get(host)!;
    const connected = async () =>
      (await a.api.ok('GET', `/hosts/${host}`)).agent.connected as boolean;
    expect(await connected()).toBe(true);

    // 1. blackhole: nothing passes, nothing is closed; a change for p1 is committed meanwhile
    let mark = agent.output.length;
    proxy!.blackhole();
    summary.network.injected++;
    const t0 = Date.now();
    const acceptedBefore = proxy!.accepted;
    await a.api.ok('POST', '/instances', { name: 'net-1', network: 'ov', host: 'w2' });
    const [agentSaw, controllerDetectedMs] = await Promise.all([
      agent
        .waitFor(/nothing from the controller/, 10_000, mark)
        .then((line) => ({ line, ms: Date.now() - t0 })),
      (async () => {
        for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50))
          if (!(await connected())) return Date.now() - t0;
        return -1;
      })(),
    ]);
    const agentLine = agentSaw.line;
    // the controller drops the session after LATTICE_AGENT_TIMEOUT_MS (1.5 s), the agent its
    // connection after --controller-timeout-ms (2 s): each within a few heartbeats of that
    expect(controllerDetectedMs).toBeGreaterThan(1000);
    expect(controllerDetectedMs).toBeLessThan(5000);
    expect(agentSaw.ms).toBeGreaterThan(1500);
    expect(agentSaw.ms).toBeLessThan(5000);
    // still partitioned: the agent's new attempts hang; then the network heals
    await sleep(1000);
    const attemptsWhilePartitioned = proxy!.accepted - acceptedBefore;
    proxy!.heal();
    const healedAt = Date.now();
    await agent.waitFor(/applied revision/, 15_000, mark);
    const viaAfterBlackhole = appliedLines(agent, mark)[0].via;
    await waitConverged(a.api, a.agents);
    const blackholeConvergeMs = Date.now() - healedAt;
    expect(await connected()).toBe(true);
    summary.network.events.push({
      fault: 'blackhole',
      agentDetectedMs: agentSaw.ms,
      agentSaid: agentLine.replace(/^\S+ /, ''),
      controllerDroppedSessionMs: controllerDetectedMs,
      proxyConnectionsAccepted: attemptsWhilePartitioned,
      resumedWith: viaAfterBlackhole,
      healedToConvergedMs: blackholeConvergeMs,
    });

    // 2. hard close: every connection reset, with a change right behind it
    mark = agent.output.length;
    proxy!.cut();
    summary.network.injected++;
    const t1 = Date.now();
    await a.api.ok('POST', '/instances', { name: 'net-2', network: 'ov', host: 'w3' });
    await agent.waitFor(/applied revision/, 15_000, mark);
    const viaAfterCut = appliedLines(agent, mark)[0].via;
    const cutConvergeMs = await waitConverged(a.api, a.agents);
    summary.network.events.push({
      fault: 'reset',
      resumedWith: viaAfterCut,
      resetToConvergedMs: Date.now() - t1,
      convergeCheckMs: cutConvergeMs,
    });
    // both times the agent missed one small change: a diff brings it forward
    expect([viaAfterBlackhole, viaAfterCut]).toEqual(['diff', 'diff']);
    expectNoProblems(
      'network drop',
      [...(await checkDesiredStates(a.api, a.databaseUrl)), ...agentErrors(a)],
      a,
    );
  }, 60_000);
});

// ---- cluster B: PostgreSQL killed under a running controller (a private server) ----

describe('PostgreSQL killed -9 and restarted', () => {
  let b: Cluster;
  let wb: Workload;
  const Q_HOSTS = ['q1', 'q2', 'q3'];
  const Q_QUIET = ['qb'];

  beforeAll(async () => {
    // the agents of cluster A are done: fewer processes on two cores
    await a?.stop();
    pgDir = mkdtempSync(join(tmpdir(), 'lattice-faults-pg-'));
    pgServer = await PrivatePostgres.start(pgDir);
    b = await Cluster.start(join(root, 'b'), pgServer.url(), (c) => clusters.push(c));
    await setupTopology(b, Q_HOSTS, Q_QUIET);
    for (const h of [...Q_HOSTS, ...Q_QUIET]) b.startAgent(h);
    await waitConverged(b.api, b.agents);
    wb = new Workload(b.api, rng, {
      prefix: 'kb',
      networks: NETWORKS,
      hosts: Q_HOSTS,
      bulkSize: [5, 30],
      thinkMs: [0, 15],
    });
    workloads.push(wb);
  }, 60_000);

  it('keeps the controller up, answers 503 meanwhile, and recovers without phantoms', async () => {
    const kinds: PostgresFault[] = [
      'kill9-postmaster',
      'kill9-all',
      'fast-restart',
      'kill9-backend',
    ];
    const plan: PostgresFault[] = [...kinds, rng.pick(kinds), rng.pick(kinds)];
    for (let k = plan.length - 1; k > 0; k--) {
      const j = rng.int(0, k);
      [plan[k], plan[j]] = [plan[j], plan[k]];
    }
    const allProbes: { status: number; path: string; error?: string }[] = [];
    for (const [i, how] of plan.entries()) {
      const round = i + 1;
      const before = wb.outcomes.length;
      const marks = outputMarks(b);
      const resyncsBefore = await resyncCounters(b.api);
      wb.start(6);
      await sleep(rng.int(300, 1200));
      await whileIdle(wb);
      // every other round: strike while a batch is inside its transaction
      const aimed = round % 2 === 0;
      const committer = aimed ? await waitForCommitter(b.databaseUrl, 1000) : undefined;
      const inFlight = wb.inFlight;
      const lostBefore = lostBatches(b).length;
      const failStart = Date.now();
      await pgServer!.fail(how, { pick: (xs) => rng.pick(xs), backend: committer });
      summary.postgres.injected++;
      summary.postgres.byKind[how] = (summary.postgres.byKind[how] ?? 0) + 1;
      const downAt = Date.now();
      // the outage: writes keep coming; reads are probed (a killed backend: the server
      // recovers by itself within the window, so reads may succeed again)
      const selfHealing = how === 'kill9-backend';
      const probes: { status: number; path: string; error?: string }[] = [];
      const outage = selfHealing ? 1500 : rng.int(500, 2000);
      while (Date.now() - downAt < outage) {
        for (const path of ['/health', '/hosts', '/hosts/q1/desired-state', '/pools', '/metrics']) {
          const r = await b.api.call('GET', path, undefined, 10_000);
          probes.push({ status: r.status, path, error: r.error });
        }
        await sleep(100);
      }
      allProbes.push(...probes);
      // No write between the recovery and the first look: what the engine kept of a batch
      // that never committed would show (the next write would recompute it away).
      await wb.stop();
      const restartAt = Date.now();
      await pgServer!.restart();
      const pgUpMs = Date.now() - restartAt;
      await b.controller.waitHealthy(30_000);
      const healthyMs = Date.now() - restartAt;
      const firstLook = await checkDesiredStates(b.api, b.databaseUrl);
      expectNoProblems(`postgres ${how} (round ${round}), right after the recovery`, firstLook, b);
      await waitConverged(b.api, b.agents);
      const recoveredConvergeMs = Date.now() - restartAt - healthyMs;
      // then writes again
      wb.start(6);
      await sleep(rng.int(300, 1000));
      await wb.stop();
      expect(b.controller.alive()).toBe(true);
      const outcomes = wb.outcomes.slice(before);
      const during = outcomes.filter(
        (o) => o.answered >= failStart && o.sent <= restartAt + pgUpMs,
      );
      const problems = [
        ...(await checkDatabase(b.databaseUrl, wb)),
        ...(await checkDesiredStates(b.api, b.databaseUrl)),
        ...agentErrors(b),
      ];
      const bad = (o: { status: number }) => ![200, 201, 503, 504].includes(o.status);
      for (const o of outcomes.filter(bad))
        problems.push(`${o.kind} answered ${o.status} ${o.error ?? ''} around a database ${how}`);
      for (const p of probes.filter((p) => p.status !== 503 && !(selfHealing && p.status === 200)))
        problems.push(
          `GET ${p.path} answered ${p.status} ${p.error ?? ''} while the database was down`,
        );
      expectNoProblems(`postgres ${how} (round ${round})`, problems, b);
      const convergeMs = await waitConverged(b.api, b.agents);
      const unknown = await resolveUnknowns(b.databaseUrl, wb);
      // batches that failed after the engine planned them: committed after all (the COMMIT was done, its answer lost), or not
      const lost = lostBatches(b).slice(lostBefore);
      // (a revision number is reused when its batch did not commit: only one whose
      // transaction began before the fault is the lost batch's own)
      const committedAnyway = (
        await sql(
          b.databaseUrl,
          'SELECT revision FROM revisions WHERE revision = ANY($1) AND committed_at < to_timestamp($2)',
          [lost, downAt / 1000],
        )
      ).length;
      const resyncs = await resyncCounters(b.api);
      const agentFrames = { diff: 0, snapshot: 0 };
      for (const [h, ag] of b.agents)
        for (const l of appliedLines(ag, marks.get(h))) agentFrames[l.via]++;
      summary.postgres.rounds.push({
        round,
        fault: how,
        requestsInFlightAtFault: inFlight,
        aimedAtATransaction: aimed,
        struckInACommitBatch: aimed ? committer !== undefined : undefined,
        batchesFailedAfterPlanning: lost.length,
        ofWhichCommittedAnyway: committedAnyway,
        takeDownMs: downAt - failStart,
        outageMs: restartAt - downAt,
        postgresStartMs: pgUpMs,
        restartToControllerHealthyMs: healthyMs,
        healthyToAgentsConvergedMs: recoveredConvergeMs,
        // snapshots: only to hosts of a batch that failed (their agents never saw it)
        snapshotsSent: resyncs.snapshot - resyncsBefore.snapshot,
        framesAppliedByAgents: agentFrames,
        writeStatuses: statusCounts(outcomes),
        writeStatusesDuringOutage: statusCounts(during),
        probeStatuses: statusCounts(probes),
        unansweredWrites: unknown,
        convergedMsAfterChecks: convergeMs,
        controllerUp: b.controller.alive(),
      });
    }
    const answered503 = wb.outcomes.filter((o: OpOutcome) => o.status === 503).length;
    expect(answered503).toBeGreaterThan(0);
    expect(allProbes.length).toBeGreaterThan(0);
  }, 120_000);
});
