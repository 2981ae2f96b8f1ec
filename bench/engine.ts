/**
 * Desired-state engine benchmark (BENCH.md "large" shape, spread layout): 1,000 hosts,
 * 1,000 networks cycling through the models, 100,000 instances. Measures the full compute,
 * single-change latency and fan-out (create, delete, move of one instance), what each change
 * cost the incremental engine (resource operations on hosts' states, (network, host) shares
 * recomputed, handled vs recomputed per change type: `engine.stats()`) and memory.
 *
 *   npm run bench:engine            (builds, then runs dist/bench/engine.js)
 *   node --expose-gc dist/bench/engine.js   (optional: settles the heap before measuring)
 *
 * Writes bench/results/engine.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type {
  Host,
  HostBlock,
  Instance,
  Network,
  NetworkModel,
  Topology,
} from '../libs/model/src/index.js';
import { DesiredStateEngine, type Change } from '../libs/engine/src/index.js';
import { benchCli } from './cli.js';

const USAGE = `usage: npm run bench:engine      (node [--expose-gc] dist/bench/engine.js)
  no options but -h, --help, -V, --version; the shape comes from the environment:
  BENCH_HOSTS (default 1000), BENCH_NETWORKS (1000), BENCH_INSTANCES (100000),
  BENCH_SAMPLES (single changes timed per kind; 300)`;

benchCli('bench:engine', USAGE, {});

const H = Number(process.env.BENCH_HOSTS ?? 1000);
const S = Number(process.env.BENCH_NETWORKS ?? 1000);
const P = Number(process.env.BENCH_INSTANCES ?? 100_000);
const SPAN = 10;
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 300);

type Kind = 'overlay-vxlan' | 'fabric' | 'routed-static' | 'routed-bgp' | 'vlan' | 'bridge';
const CYCLE: Kind[] = ['overlay-vxlan', 'fabric', 'routed-static', 'routed-bgp', 'vlan', 'bridge'];

/** Deterministic PRNG (mulberry32) so runs are comparable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hostId = (j: number) => `host-${j.toString().padStart(4, '0')}`;
const netId = (n: number) => `net-${n.toString().padStart(4, '0')}`;
const mac = (i: number) => {
  const h = i.toString(16).padStart(10, '0');
  return `02:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}`;
};
const spreadHost = (n: number, k: number) => (n * SPAN + (k % SPAN)) % H;

interface NetInfo {
  network: Network;
  blockBase: string | null; // "a.b" of the network's /16 for block-based networks
}

function buildTopology(): { topology: Topology; nets: NetInfo[] } {
  const hosts = new Map<string, Host>();
  for (let j = 0; j < H; j++) {
    const id = hostId(j);
    hosts.set(id, {
      id,
      name: `h${j}`,
      underlayIp: `172.16.${j >> 8}.${j & 255}`,
      uplink: 'eth0',
      asn: null,
      labels: {},
    });
  }
  const networks = new Map<string, Network>();
  const nets: NetInfo[] = [];
  let blockNets = 0;
  for (let n = 0; n < S; n++) {
    const kind = CYCLE[n % CYCLE.length];
    const model: NetworkModel =
      kind === 'overlay-vxlan'
        ? 'overlay'
        : kind === 'routed-static' || kind === 'routed-bgp'
          ? 'routed'
          : kind;
    const blockBased = model === 'routed';
    let blockBase: string | null = null;
    let cidr = '192.168.0.0/24'; // isolated L2 networks may all reuse one subnet
    if (blockBased) {
      const b = blockNets++;
      blockBase = `${10 + (b >> 8)}.${b & 255}`;
      cidr = `${blockBase}.0.0/16`;
    }
    const network: Network = {
      id: netId(n),
      name: `n${n}`,
      model,
      cidr,
      gateway: blockBased ? `${blockBase}.0.1` : '192.168.0.1',
      mtu: 1500,
      vlanId: kind === 'vlan' ? 100 + n : null,
      vni: kind === 'overlay-vxlan' || kind === 'fabric' ? 10000 + n : null,
      encapsulation: kind === 'overlay-vxlan' ? 'vxlan' : null,
      routing: kind === 'routed-static' ? 'static' : kind === 'routed-bgp' ? 'bgp' : null,
      blockPrefixLen: blockBased ? 26 : null,
      transport: kind === 'fabric' ? 'vxlan' : null,
    };
    networks.set(network.id, network);
    nets.push({ network, blockBase });
  }
  // Blocks: host slot o (0..9) of a block-based network owns the o-th /26 of its /16.
  const blocks: HostBlock[] = [];
  for (let n = 0; n < S; n++) {
    const { blockBase } = nets[n];
    if (!blockBase) continue;
    for (let o = 0; o < SPAN; o++) {
      blocks.push({
        networkId: netId(n),
        hostId: hostId(spreadHost(n, o)),
        cidr: `${blockBase}.${(o * 64) >> 8}.${(o * 64) & 255}/26`,
      });
    }
  }
  const instances = new Map<string, Instance>();
  for (let i = 0; i < P; i++) instances.set(`inst-${i}`, makeInstance(nets, i, Math.floor(i / S)));
  return { topology: { hosts, networks, instances, blocks, routers: new Map() }, nets };
}

/** The k-th instance of network i % S, spread layout, with an address valid for it. */
function makeInstance(nets: NetInfo[], i: number, k: number): Instance {
  const n = i % S;
  const { network, blockBase } = nets[n];
  const o = k % SPAN;
  let ip: string;
  if (blockBase) {
    const off = o * 64 + 2 + Math.floor(k / SPAN); // inside the slot's /26, after its gateway
    ip = `${blockBase}.${off >> 8}.${off & 255}`;
  } else {
    ip = `192.168.${(k + 2) >> 8}.${(k + 2) & 255}`;
  }
  return {
    id: `inst-${i}`,
    name: `vm-${i}`,
    networkId: network.id,
    hostId: hostId(spreadHost(n, k)),
    ip,
    mac: mac(i),
    labels: {},
  };
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

interface Series {
  ms: number[];
  touched: number[];
  recomputed: number[];
  /** Writes to hosts' states (stats().resourceOps) per change. */
  ops: number[];
  /** (network, host) shares computed from scratch per change. */
  shares: number[];
}

function summarize(s: Series) {
  return {
    samples: s.ms.length,
    p50Ms: round(quantile(s.ms, 0.5)),
    p99Ms: round(quantile(s.ms, 0.99)),
    maxMs: round(Math.max(...s.ms)),
    hostsTouchedP50: quantile(s.touched, 0.5),
    hostsTouchedP99: quantile(s.touched, 0.99),
    hostsTouchedMax: Math.max(...s.touched),
    hostsRecomputedP50: quantile(s.recomputed, 0.5),
    resourceOpsP50: quantile(s.ops, 0.5),
    resourceOpsP99: quantile(s.ops, 0.99),
    resourceOpsMax: Math.max(...s.ops),
    sharesComputedP50: quantile(s.shares, 0.5),
    sharesComputedP99: quantile(s.shares, 0.99),
    sharesComputedMean: round(s.shares.reduce((a, b) => a + b, 0) / s.shares.length),
  };
}
const round = (x: number) => Math.round(x * 1000) / 1000;
const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
const gc = (globalThis as { gc?: () => void }).gc;

function main(): void {
  const t0 = performance.now();
  const { topology, nets } = buildTopology();
  const buildMs = performance.now() - t0;

  const t1 = performance.now();
  const engine = new DesiredStateEngine(topology);
  const fullComputeMs = performance.now() - t1;

  let resources = 0;
  const byKind: Record<string, number> = {};
  for (const h of engine.hostIds()) {
    const s = engine.stateOf(h);
    resources += s.size;
    for (const r of s.values()) byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
  }
  gc?.();
  const mem = process.memoryUsage();

  // Single changes into the loaded system.
  const rand = rng(42);
  const pick = (m: number) => Math.floor(rand() * m);
  const series: Record<'create' | 'delete' | 'move', Series> = {
    create: { ms: [], touched: [], recomputed: [], ops: [], shares: [] },
    delete: { ms: [], touched: [], recomputed: [], ops: [], shares: [] },
    move: { ms: [], touched: [], recomputed: [], ops: [], shares: [] },
  };
  const run = (kind: keyof typeof series, c: Change) => {
    const before = engine.stats();
    const t = performance.now();
    const u = engine.apply(c);
    series[kind].ms.push(performance.now() - t);
    const after = engine.stats();
    series[kind].touched.push(u.hosts.size);
    series[kind].recomputed.push(u.recomputed);
    series[kind].ops.push(after.resourceOps - before.resourceOps);
    series[kind].shares.push(after.sharesComputed - before.sharesComputed);
  };
  const statsAfterCompute = engine.stats();
  let next = P;
  const perNet = Math.floor(P / S);
  for (let s = 0; s < SAMPLES; s++) {
    // create: one more instance of a random network, on one of its hosts
    const i = next++;
    const n = pick(S);
    run('create', {
      type: 'instance.upsert',
      instance: { ...makeInstance(nets, n, perNet + (s % 20)), id: `inst-${i}`, mac: mac(i) },
    });
    // delete: a random original instance (each at most once)
    run('delete', { type: 'instance.delete', id: `inst-${(s * 331 + 7) % P}` });
    // move: an instance of an L2 model (moves keep IP and MAC; invalid for block models)
    let m = pick(P);
    while (nets[m % S].blockBase !== null || (m - 7) % 331 === 0) m = pick(P);
    run('move', { type: 'instance.move', id: `inst-${m}`, hostId: hostId(pick(H)) });
  }
  gc?.();
  const memAfter = process.memoryUsage();
  const stats = engine.stats();

  const result = {
    shape: { hosts: H, networks: S, instances: P, layout: 'spread', span: SPAN },
    models: CYCLE,
    buildTopologyMs: round(buildMs),
    fullComputeMs: round(fullComputeMs),
    fullComputePerHostMs: round(fullComputeMs / H),
    totalResources: resources,
    resourcesPerHost: Math.round(resources / H),
    resourcesByKind: byKind,
    singleChange: {
      create: summarize(series.create),
      delete: summarize(series.delete),
      move: summarize(series.move),
    },
    engine: {
      shares: statsAfterCompute.shares,
      internedKeysAfterFullCompute: statsAfterCompute.internedKeys,
      internedKeysAfterChanges: stats.internedKeys,
      /** Per change type: turned into deltas only vs made a (network, host) share recompute. */
      changes: Object.fromEntries(
        Object.entries(stats.changes).filter(([, v]) => v.handled + v.recomputed > 0),
      ),
      fallbacks: stats.fallbacks,
    },
    memory: {
      afterFullCompute: { rssMb: mb(mem.rss), heapUsedMb: mb(mem.heapUsed) },
      afterChanges: { rssMb: mb(memAfter.rss), heapUsedMb: mb(memAfter.heapUsed) },
      /** Peak RSS of the process (V8 grows its heap under allocation churn). */
      peakRssMb: mb(process.resourceUsage().maxRSS * 1024),
      gcExposed: !!gc,
    },
    node: process.version,
    date: new Date().toISOString(),
  };

  console.log(`engine bench: ${H} hosts, ${S} networks, ${P} instances (spread layout)`);
  console.table({
    'full compute (all hosts)': { value: `${result.fullComputeMs} ms` },
    'total resources': { value: resources },
    'resources / host': { value: result.resourcesPerHost },
    'rss after full compute': { value: `${mb(mem.rss)} MB` },
    'heapUsed after full compute': { value: `${mb(mem.heapUsed)} MB` },
    'rss / heapUsed after changes': {
      value: `${mb(memAfter.rss)} MB / ${mb(memAfter.heapUsed)} MB`,
    },
    'peak rss': { value: `${result.memory.peakRssMb} MB` },
    '(network, host) shares': { value: statsAfterCompute.shares },
    'interned resource keys': { value: statsAfterCompute.internedKeys },
  });
  console.table(
    Object.fromEntries(
      (['create', 'delete', 'move'] as const).map((k) => {
        const r = result.singleChange[k];
        return [
          k,
          {
            samples: r.samples,
            'p50 ms': r.p50Ms,
            'p99 ms': r.p99Ms,
            'hosts touched p50': r.hostsTouchedP50,
            'hosts touched p99': r.hostsTouchedP99,
            'hosts visited p50': r.hostsRecomputedP50,
            'resource ops p50': r.resourceOpsP50,
            'resource ops p99': r.resourceOpsP99,
            'shares computed p50': r.sharesComputedP50,
            'shares computed p99': r.sharesComputedP99,
          },
        ];
      }),
    ),
  );
  console.table(result.engine.changes);
  const dir = resolve(process.cwd(), 'bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(resolve(dir, 'engine.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${resolve(dir, 'engine.json')}`);
}

main();
