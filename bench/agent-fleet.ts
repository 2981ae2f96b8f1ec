/**
 * The convergence benchmark's agent fleet: N agents (the project's own `Agent`) on the
 * memory data plane, in a process of their own, each with its own WebSocket to the
 * controller. Forked by bench/converge.ts with an IPC channel; see fleet-protocol.ts for
 * what it is asked and answers. Exits when the parent goes away.
 */
import { Agent } from '../apps/agent/src/agent.js';
import { MemoryDataplane } from '../apps/agent/src/dataplane/memory.js';
import {
  wallNow,
  type FleetOptions,
  type FleetReply,
  type FleetRequest,
  type FleetStats,
  type HostResources,
  type ResyncReport,
} from './fleet-protocol.js';
import { benchCli } from './cli.js';

interface Member {
  readonly name: string;
  readonly agent: Agent;
  readonly dataplane: MemoryDataplane;
  appliedOnce: boolean;
  /** Applied since its last disconnect. */
  connected: boolean;
  resourceErrors: number;
  /** Restart tracking: disconnected since the mark, and when it first applied after that. */
  droppedSinceMark: boolean;
  resyncAt: number | undefined;
}

const USAGE = `usage: node dist/bench/agent-fleet.js   (forked by bench/converge.ts)
  no options but -h, --help, -V, --version: converge.ts sends it its orders over the IPC
  channel (bench/fleet-protocol.ts)`;

benchCli('agent-fleet', USAGE, {});

if (!process.send) {
  console.error('agent-fleet is started by bench/converge.ts (it needs an IPC channel)');
  process.exit(2);
}

const members: Member[] = [];
let appliedOnce = 0;
let resynced = 0;
let marking = false;
let baseline = { bytes: 0, snapshots: 0, diffs: 0, resourceErrors: 0 };
const waiters = new Set<() => void>();
let logged = 0;
const LOG_LIMIT = 200;

const log = (line: string) => {
  if (logged++ < LOG_LIMIT) process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  else if (logged === LOG_LIMIT + 1) process.stderr.write('(further agent log lines dropped)\n');
};

const notify = () => {
  for (const w of [...waiters]) w();
};

/** Resolves when `done()` holds, rejects with `why()` after `timeoutMs`. */
function until(done: () => boolean, timeoutMs: number, why: () => string): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!done()) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(why()));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    waiters.add(check);
  });
}

function totals() {
  let bytes = 0;
  let snapshots = 0;
  let diffs = 0;
  let errorFrames = 0;
  let resourceErrors = 0;
  for (const m of members) {
    bytes += m.agent.received.bytes;
    snapshots += m.agent.received.snapshot;
    diffs += m.agent.received.diff;
    errorFrames += m.agent.received.error;
    resourceErrors += m.resourceErrors;
  }
  return { bytes, snapshots, diffs, errorFrames, resourceErrors };
}

function start(o: FleetOptions): void {
  for (const h of o.hosts) {
    const dataplane = new MemoryDataplane();
    const agent = new Agent({
      controller: o.controller,
      host: h.name,
      token: h.token,
      dataplane,
      heartbeatMs: o.heartbeatMs,
      backoffMinMs: o.backoffMinMs,
      backoffMaxMs: o.backoffMaxMs,
      log,
    });
    const m: Member = {
      name: h.name,
      agent,
      dataplane,
      appliedOnce: false,
      connected: false,
      resourceErrors: 0,
      droppedSinceMark: false,
      resyncAt: undefined,
    };
    agent.on((e) => {
      if (e.type === 'applied') {
        m.connected = true;
        m.resourceErrors += e.errors.length;
        if (!m.appliedOnce) {
          m.appliedOnce = true;
          appliedOnce++;
        }
        if (marking && m.droppedSinceMark && m.resyncAt === undefined) {
          m.resyncAt = wallNow();
          resynced++;
        }
        notify();
      } else if (e.type === 'disconnected') {
        m.connected = false;
        if (marking) m.droppedSinceMark = true;
      }
    });
    members.push(m);
  }
  // No state dir: nothing is read from disk, so start() only connects.
  for (const m of members) void m.agent.start();
}

function stats(): FleetStats {
  let minApplied = Infinity;
  let maxApplied = 0;
  for (const m of members) {
    minApplied = Math.min(minApplied, m.agent.appliedRevision);
    maxApplied = Math.max(maxApplied, m.agent.appliedRevision);
  }
  return {
    agents: members.length,
    connected: members.filter((m) => m.connected).length,
    ...totals(),
    minApplied: members.length ? minApplied : 0,
    maxApplied,
    rssBytes: process.memoryUsage.rss(),
  };
}

function resyncReport(): ResyncReport {
  const at = members.flatMap((m) => (m.resyncAt === undefined ? [] : [m.resyncAt]));
  at.sort((a, b) => a - b);
  const t = totals();
  return {
    resynced: at.length,
    missing: members.length - at.length,
    firstAppliedAt: {
      min: at[0] ?? NaN,
      p50: at[Math.floor(at.length / 2)] ?? NaN,
      max: at[at.length - 1] ?? NaN,
    },
    bytes: t.bytes - baseline.bytes,
    snapshots: t.snapshots - baseline.snapshots,
    diffs: t.diffs - baseline.diffs,
    resourceErrors: t.resourceErrors - baseline.resourceErrors,
  };
}

function resources(host: string): HostResources {
  const m = members.find((x) => x.name === host);
  if (!m) throw new Error(`no agent for host ${host}`);
  return {
    host,
    appliedRevision: m.agent.appliedRevision,
    resources: [...m.dataplane.resources().values()],
  };
}

async function handle(req: FleetRequest): Promise<unknown> {
  switch (req.op) {
    case 'start':
      start(req.options);
      return undefined;
    case 'awaitAllApplied':
      await until(
        () => appliedOnce === members.length,
        req.timeoutMs,
        () => `${members.length - appliedOnce} of ${members.length} agents never applied anything`,
      );
      return stats();
    case 'stats':
      return stats();
    case 'markRestart':
      marking = true;
      resynced = 0;
      baseline = totals();
      for (const m of members) {
        m.droppedSinceMark = false;
        m.resyncAt = undefined;
      }
      return undefined;
    case 'awaitResync':
      await until(
        () => resynced === members.length,
        req.timeoutMs,
        () => `${members.length - resynced} of ${members.length} agents did not resync`,
      ).catch(() => undefined); // the report says how many are missing
      return resyncReport();
    case 'resources':
      return resources(req.host);
    case 'stop':
      await Promise.all(members.map((m) => m.agent.stop()));
      return undefined;
  }
}

const reply = (r: FleetReply, then?: () => void) => process.send!(r, undefined, {}, then);

process.on('message', (req: FleetRequest) => {
  handle(req).then(
    (result) =>
      reply(
        { id: req.id, ok: true, result },
        req.op === 'stop' ? () => process.exit(0) : undefined,
      ),
    (e: unknown) =>
      reply({ id: req.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
// The parent is gone (crashed or killed): nothing is left to report to.
process.on('disconnect', () => process.exit(1));
