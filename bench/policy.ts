/**
 * Network policy benchmark (issue 12), on the desired-state engine: 100 hosts, 100 networks
 * (VXLAN overlays, each spanning 10 hosts, joined by routers in groups of 10), 10,000
 * labelled instances and 1,000 policies. Measures the initial compute, then label changes
 * (one instance at a time, alternating its role), policy creates and deletes: time per
 * change, hosts changed, resource operations and set membership changes (engine.stats()).
 * End-to-end enforcement with real agents is measured by test/lab/policy.e2e.ts.
 *
 *   npm run bench:policy [-- --changes N]
 *
 * Writes bench/results/policy.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Host, Instance, Network, Policy, Router } from '../libs/model/src/index.js';
import { DesiredStateEngine } from '../libs/engine/src/index.js';
import { benchCli } from './cli.js';

const USAGE = `usage: npm run bench:policy -- [options]
  --changes N                 label changes timed; default 500
  -h, --help, -V, --version`;

const { values: argv } = benchCli('bench:policy', USAGE, {
  changes: { type: 'string', default: '500' },
});
const CHANGES = Number(argv.changes);
const H = 100;
const S = 100;
const P = 10_000;
const POLICIES = 1_000;
const ROLES = ['web', 'api', 'db', 'cache'];

const hostId = (j: number) => `host-${j}`;
const netId = (n: number) => `net-${String(n).padStart(3, '0')}`;
const hosts: Host[] = Array.from({ length: H }, (_, j) => ({
  id: hostId(j),
  name: `h${j}`,
  underlayIp: `198.18.${j >> 8}.${(j & 255) + 1}`,
  uplink: 'eth0',
  asn: null,
  labels: {},
}));
const networks: Network[] = Array.from({ length: S }, (_, n) => ({
  id: netId(n),
  name: `n${n}`,
  model: 'overlay',
  cidr: `10.${n}.0.0/16`,
  gateway: `10.${n}.0.1`,
  mtu: 1500,
  vlanId: null,
  vni: 10_000 + n,
  encapsulation: 'vxlan',
  routing: null,
  blockPrefixLen: null,
  transport: null,
}));
const routers: Router[] = Array.from({ length: S / 10 }, (_, r) => ({
  id: `router-${r}`,
  name: `r${r}`,
  networkIds: Array.from({ length: 10 }, (_, k) => netId(r * 10 + k)),
}));
const labelsOf = (i: number, shift = 0) => ({
  app: `a${Math.floor(i / S) % 50}`,
  role: ROLES[(Math.floor(i / S / 50) + i + shift) % ROLES.length],
});
const instances: Instance[] = Array.from({ length: P }, (_, i) => {
  const n = i % S;
  const k = Math.floor(i / S);
  return {
    id: `inst-${i}`,
    name: `i${i}`,
    networkId: netId(n),
    hostId: hostId((n * 10 + (k % 10)) % H),
    ip: `10.${n}.${k >> 8}.${(k & 255) + 2}`,
    mac: `02:00:00:${(i >> 16) & 255}:${(i >> 8) & 255}:${i & 255}`.replace(
      /:(\d+)/g,
      (_m, d: string) => ':' + Number(d).toString(16).padStart(2, '0'),
    ),
    labels: labelsOf(i),
  };
});
const policyOf = (k: number): Policy => ({
  id: `policy-${String(k).padStart(4, '0')}`,
  name: `p${k}`,
  selector: { matchLabels: { app: `a${k % 50}`, role: ROLES[k % 4] }, matchExpressions: [] },
  networkIds: [],
  ingress: [
    {
      peers: [
        {
          selector: { matchLabels: { role: ROLES[(k + 1) % 4] }, matchExpressions: [] },
          networkIds: [],
        },
      ],
      ports: [{ protocol: 'tcp', port: 8000 + (k % 100), endPort: null }],
    },
  ],
  egress:
    k % 5 === 0
      ? [
          {
            peers: [
              {
                selector: { matchLabels: { app: `a${(k + 1) % 50}` }, matchExpressions: [] },
                networkIds: [],
              },
            ],
            ports: [],
          },
        ]
      : null,
});
const policies = Array.from({ length: POLICIES }, (_, k) => policyOf(k));

const byId = <T extends { id: string }>(xs: T[]) => new Map(xs.map((x) => [x.id, x]));
const gc = (globalThis as { gc?: () => void }).gc;

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { n: s.length, p50: r(at(50)), p99: r(at(99)), max: r(s[s.length - 1] ?? NaN) };
}

gc?.();
const heap0 = process.memoryUsage().heapUsed;
let t = performance.now();
const engine = new DesiredStateEngine({
  hosts: byId(hosts),
  networks: byId(networks),
  instances: byId(instances),
  blocks: [],
  routers: byId(routers),
  policies: byId(policies),
});
const computeMs = performance.now() - t;
gc?.();
const heapMB = (process.memoryUsage().heapUsed - heap0) / 1048576;
const s0 = engine.stats();
console.log(
  `initial compute: ${Math.round(computeMs)} ms, heap ${Math.round(heapMB)} MB; ` +
    `${s0.policy.selectedInstances} selected instances, ${s0.policy.sets} peer sets`,
);

// Label changes: instance i's role moves on by one (it leaves one peer set and joins another).
const ms: number[] = [];
const hostsChanged: number[] = [];
const ops: number[] = [];
const memberships: number[] = [];
for (let c = 0; c < CHANGES; c++) {
  const i = (c * 7919) % P;
  const cur = engine.topology().instances.get(`inst-${i}`)!;
  const before = engine.stats();
  t = performance.now();
  const u = engine.apply({
    type: 'instance.upsert',
    instance: { ...cur, labels: labelsOf(i, c + 1) },
  });
  ms.push(performance.now() - t);
  const after = engine.stats();
  hostsChanged.push(u.hosts.size);
  ops.push(after.resourceOps - before.resourceOps);
  memberships.push(after.policy.membershipChanges - before.policy.membershipChanges);
}
const policyMs: number[] = [];
const policyHosts: number[] = [];
for (let c = 0; c < 50; c++) {
  const p = { ...policyOf(POLICIES + c), id: `extra-${c}` };
  t = performance.now();
  policyHosts.push(engine.apply({ type: 'policy.upsert', policy: p }).hosts.size);
  engine.apply({ type: 'policy.delete', id: p.id });
  policyMs.push(performance.now() - t);
}

const results = {
  shape: { hosts: H, networks: S, instances: P, policies: POLICIES, routers: routers.length },
  initialComputeMs: Math.round(computeMs),
  heapMB: Math.round(heapMB),
  selectedInstances: s0.policy.selectedInstances,
  peerSets: s0.policy.sets,
  labelChange: {
    ms: stats(ms),
    hostsChanged: stats(hostsChanged),
    resourceOps: stats(ops),
    membershipChanges: stats(memberships),
  },
  policyCreateAndDelete: { ms: stats(policyMs), hostsChangedByCreate: stats(policyHosts) },
  node: process.version,
  finishedAt: new Date().toISOString(),
};
console.log(JSON.stringify(results, null, 2));
const dir = resolve(import.meta.dirname, '..', '..', 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(resolve(dir, 'policy.json'), JSON.stringify(results, null, 2) + '\n');
console.log(`wrote bench/results/policy.json`);
