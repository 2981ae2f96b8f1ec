/**
 * Convergence benchmark: a real controller (embedded PostgreSQL), N agents on the memory
 * data plane over real WebSockets in this process, and M instance creates.
 *
 *   npm run bench:converge [-- --agents 200 --creates 500 --networks 100 --concurrency 8]
 *
 * Reports (median and p99 where a latency): single create → all affected agents applied
 * (`?wait=applied` round trip, one at a time into a loaded system), creates/s converged
 * with concurrent clients, a 1,000-instance bulk converged, bytes per diff, and the
 * reconnect/resync after a controller restart (diff vs snapshot, bytes, time).
 * Writes bench/results/converge.json.
 */
import 'reflect-metadata';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent } from '../apps/agent/src/agent.js';
import { MemoryDataplane } from '../apps/agent/src/dataplane/memory.js';
import { createController, type Controller } from '../apps/controller/src/app.js';
import { loadConfig } from '../apps/controller/src/config/config.js';
import {
  freePort,
  startEmbeddedPostgres,
} from '../apps/controller/src/database/embedded-postgres.js';

const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '200' },
    creates: { type: 'string', default: '500' },
    networks: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '8' },
  },
});
const N = Number(args.agents);
const M = Number(args.creates);
const S = Number(args.networks);
const C = Number(args.concurrency);
const SPAN = Math.min(10, N);
const MODELS = [
  { model: 'overlay' },
  { model: 'fabric' },
  { model: 'routed', routing: 'static' },
  { model: 'routed', routing: 'bgp' },
  { model: 'vlan' },
  { model: 'bridge' },
];

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
const round = (x: number) => Math.round(x * 100) / 100;

/** Resolves when every agent has applied something (its first sync after a (re)connect). */
function allApplied(agents: Agent[]): Promise<void[]> {
  return Promise.all(
    agents.map(
      (a) =>
        new Promise<void>((done) => {
          const off = a.on((e) => {
            if (e.type !== 'applied') return;
            off();
            done();
          });
        }),
    ),
  );
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'lattice-bench-'));
  chmodSync(dir, 0o711); // the embedded PostgreSQL runs as 'postgres' and must traverse it
  const db = await startEmbeddedPostgres({ dataDir: join(dir, 'db') });
  const port = await freePort();
  const env = {
    LATTICE_LOG_LEVEL: 'warn',
    LATTICE_ADMIN_TOKEN: 'bench-admin-token-0123456789',
    LATTICE_VLAN_POOL: '100-4094',
  };
  const start = async () => {
    const c = await createController({
      ...loadConfig(env),
      databaseUrl: db.url,
      dataDir: join(dir, 'ctl'),
      port,
      host: '127.0.0.1',
    });
    await c.app.listen({ port, host: '127.0.0.1' });
    return c;
  };
  let ctl: Controller = await start();
  const base = `http://127.0.0.1:${port}/api/v1`;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, {
      method,
      headers: {
        authorization: `Bearer ${env.LATTICE_ADMIN_TOKEN}`,
        'content-type': 'application/json',
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };

  console.log(`setting up ${N} hosts, ${S} networks (spread over ${SPAN} hosts each)…`);
  const hosts: { name: string; agentToken: string }[] = [];
  for (let j = 0; j < N; j++)
    hosts.push(
      (await api('POST', '/hosts', {
        name: `h${j}`,
        underlayIp: `10.${200 + (j >> 16)}.${(j >> 8) & 255}.${j & 255}`,
      })) as unknown as { name: string; agentToken: string },
    );
  for (let n = 0; n < S; n++) {
    const m = MODELS[n % MODELS.length];
    await api('POST', '/networks', {
      name: `n${n}`,
      cidr: `10.${Math.floor(n / 256)}.${n % 256}.0/24`,
      ...m,
      ...(m.model === 'routed' ? { blockPrefixLen: 28 } : {}),
    });
  }
  const agents = hosts.map(
    (h) =>
      new Agent({
        controller: `ws://127.0.0.1:${port}/agent`,
        host: h.name,
        token: h.agentToken,
        dataplane: new MemoryDataplane(),
        heartbeatMs: 5000,
        backoffMinMs: 100,
        backoffMaxMs: 2000,
      }),
  );
  const t0 = performance.now();
  const firstSync = allApplied(agents);
  await Promise.all(agents.map((a) => a.start()));
  await firstSync;
  const connectMs = performance.now() - t0;
  console.log(`${N} agents connected and in sync in ${Math.round(connectMs)} ms`);

  let i = 0;
  const spec = () => {
    const n = i % S;
    const host = (n * SPAN + (Math.floor(i / S) % SPAN)) % N;
    return { name: `i${i++}`, network: `n${n}`, host: `h${host}` };
  };

  // 1. single creates, one at a time, each waiting for every affected agent
  const single: number[] = [];
  for (let k = 0; k < M; k++) {
    const s = performance.now();
    await api('POST', '/instances?wait=applied&timeoutMs=30000', spec());
    single.push(performance.now() - s);
  }
  // 2. concurrent creates with wait=applied: converged creates per second
  const concurrentTotal = M;
  const c0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next++ < concurrentTotal)
        await api('POST', '/instances?wait=applied&timeoutMs=30000', spec());
    }),
  );
  const concurrentMs = performance.now() - c0;
  // 3. one bulk of 1,000, converged
  const b0 = performance.now();
  await api('POST', '/instances/bulk?wait=applied&timeoutMs=60000', {
    instances: Array.from({ length: 1000 }, spec),
  });
  const bulkMs = performance.now() - b0;

  const metricsText = await (
    await fetch(base + '/metrics', {
      headers: { authorization: `Bearer ${env.LATTICE_ADMIN_TOKEN}` },
    })
  ).text();
  const metric = (name: string) =>
    Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metricsText)?.[1] ?? NaN);
  const diffFrames = metric('lattice_agent_frames_sent_total\\{type="diff"\\}');
  const diffBytes = metric('lattice_agent_bytes_sent_total\\{type="diff"\\}');

  // 4. controller restart: every agent reconnects and resyncs
  const before = agents.map((a) => a.received.bytes);
  const snaps = agents.map((a) => a.received.snapshot);
  await ctl.close();
  const r0 = performance.now();
  const resynced = allApplied(agents);
  ctl = await start();
  await resynced;
  const resyncMs = performance.now() - r0;
  const resyncBytes = agents.reduce((sum, a, k) => sum + a.received.bytes - before[k], 0);
  const resyncSnapshots = agents.reduce((sum, a, k) => sum + a.received.snapshot - snaps[k], 0);
  const rss = process.memoryUsage().rss;

  const result = {
    shape: {
      agents: N,
      networks: S,
      span: SPAN,
      singleCreates: M,
      concurrentCreates: concurrentTotal,
      concurrency: C,
      bulk: 1000,
    },
    connectAllMs: Math.round(connectMs),
    createToAllAppliedMs: {
      p50: round(pct(single, 50)),
      p99: round(pct(single, 99)),
      max: round(Math.max(...single)),
    },
    concurrentConvergedCreatesPerSec: round((concurrentTotal / concurrentMs) * 1000),
    singleConvergedCreatesPerSec: round((M / single.reduce((a, b) => a + b, 0)) * 1000),
    bulk1000ConvergedMs: Math.round(bulkMs),
    bytesPerDiff: round(diffBytes / diffFrames),
    diffFrames,
    restart: { resyncAllMs: Math.round(resyncMs), snapshots: resyncSnapshots, bytes: resyncBytes },
    processRssMB: Math.round(rss / 1048576),
  };
  console.table({
    'create → all applied p50 (ms)': result.createToAllAppliedMs.p50,
    'create → all applied p99 (ms)': result.createToAllAppliedMs.p99,
    'converged creates/s (1 client)': result.singleConvergedCreatesPerSec,
    [`converged creates/s (${C} clients)`]: result.concurrentConvergedCreatesPerSec,
    'bulk 1,000 converged (ms)': result.bulk1000ConvergedMs,
    'bytes per diff': result.bytesPerDiff,
    'restart: all resynced (ms)': result.restart.resyncAllMs,
    'restart: snapshots sent': result.restart.snapshots,
    'restart: bytes sent': result.restart.bytes,
  });
  const out = resolve('bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'converge.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${join(out, 'converge.json')}`);

  await Promise.all(agents.map((a) => a.stop()));
  await ctl.close();
  await db.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
