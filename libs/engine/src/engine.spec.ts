/**
 * Path independence of the incremental engine (Calico calc-graph / OVN style): any sequence
 * of API-level changes applied incrementally yields exactly the full recompute; the result
 * does not depend on the order of independent changes; every emitted diff is well-ordered
 * and applies cleanly on a strict fake agent.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type {
  Host,
  LabelSelector,
  Network,
  Policy,
  PolicyPeer,
  PolicyPort,
  PolicyRule,
  Router,
  Topology,
} from '../../model/src/index.js';
import {
  applyDiff,
  computeAll,
  deviceOf,
  diff,
  DesiredStateEngine,
  bridgeName,
  vethName,
  EMPTY_STATE,
  FakeAgent,
  statesEqual,
  type Change,
  type DesiredState,
} from './index.js';
import { host, instance, network, topology, GOLDEN } from './fixtures.test.js';

// ---- a small universe of ids, so that random changes collide often -----------------------

const HOST_IDS = ['h0', 'h1', 'h2', 'h3', 'h4'];
const NET_IDS = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5'];
const INST_IDS = Array.from({ length: 14 }, (_, i) => `i${i}`);
/** Floating IP fk binds only instances i with i % 3 = k: never two on one instance. */
const FIP_IDS = ['f0', 'f1', 'f2'];
const ROUTER_IDS = ['r0', 'r1', 'r2'];

const hostIdx = (id: string) => HOST_IDS.indexOf(id);
const netIdx = (id: string) => NET_IDS.indexOf(id);

type Variant = Pick<
  Network,
  'model' | 'encapsulation' | 'routing' | 'transport' | 'vlanId' | 'vni' | 'blockPrefixLen'
>;
const VARIANTS: ((k: number) => Variant)[] = [
  () => ({ model: 'bridge', ...none() }),
  (k) => ({ model: 'vlan', ...none(), vlanId: 100 + k }),
  () => ({ model: 'routed', ...none(), routing: 'static', blockPrefixLen: 26 }),
  () => ({ model: 'routed', ...none(), routing: 'bgp', blockPrefixLen: 26 }),
  (k) => ({ model: 'overlay', ...none(), encapsulation: 'vxlan', vni: 10000 + k }),
  () => ({ model: 'overlay', ...none(), encapsulation: 'ipip', blockPrefixLen: 26 }),
  () => ({ model: 'overlay', ...none(), encapsulation: 'gre', blockPrefixLen: 26 }),
  (k) => ({ model: 'fabric', ...none(), transport: 'vxlan', vni: 10000 + k }),
  (k) => ({ model: 'fabric', ...none(), transport: 'vlan', vlanId: 100 + k }),
];
function none(): Omit<Variant, 'model'> {
  return {
    encapsulation: null,
    routing: null,
    transport: null,
    vlanId: null,
    vni: null,
    blockPrefixLen: null,
  };
}

function mkNetwork(id: string, variant: number, mtu: number, natOutgoing = false): Network {
  const k = netIdx(id);
  const v = VARIANTS[variant](k);
  const blockBased = v.blockPrefixLen !== null;
  // Block-based networks get distinct /16s; L2 networks share one subnet (allowed when
  // isolated), except that router-attached ones must not overlap: give them their own too.
  const cidr = blockBased ? `10.${100 + k}.0.0/16` : k % 2 ? `10.${50 + k}.0.0/24` : '10.10.0.0/24';
  return { ...network(id, v.model, cidr), ...v, mtu, ...(natOutgoing ? { natOutgoing } : {}) };
}
function blockCidr(networkId: string, hostId: string): string {
  return `10.${100 + netIdx(networkId)}.${hostIdx(hostId)}.0/26`;
}
function instanceIp(net: Network, hostId: string, idx: number): string {
  if (net.blockPrefixLen !== null)
    return `10.${100 + netIdx(net.id)}.${hostIdx(hostId)}.${2 + idx}`;
  return `${net.cidr.split('.').slice(0, 3).join('.')}.${2 + idx}`;
}
const mac = (idx: number) => `02:00:00:00:01:${idx.toString(16).padStart(2, '0')}`;

function hostArbFor(ids: string[]): fc.Arbitrary<Host> {
  return fc
    .record({
      id: fc.constantFrom(...ids),
      ipVariant: fc.constantFrom(0, 0, 0, 1),
      reflector: fc.constantFrom(false, false, false, true),
      asn: fc.constantFrom(null, null, 64600),
      uplink: fc.constantFrom('eth0', 'eth0', 'ens3'),
    })
    .map(({ id, ipVariant, reflector, asn, uplink }): Host =>
      host(id, `192.0.2.${10 + hostIdx(id) + 50 * ipVariant}`, {
        asn,
        uplink,
        labels: reflector ? { 'lattice.io/route-reflector': 'true' } : {},
      }),
    );
}
const hostArb = hostArbFor(HOST_IDS);

const networkArbFor = (ids: string[]) =>
  fc
    .record({
      id: fc.constantFrom(...ids),
      variant: fc.integer({ min: 0, max: VARIANTS.length - 1 }),
      mtu: fc.constantFrom(1500, 1500, 9000),
      natOutgoing: fc.constantFrom(false, false, true),
    })
    .map(({ id, variant, mtu, natOutgoing }) => mkNetwork(id, variant, mtu, natOutgoing));
const networkArb = networkArbFor(NET_IDS);

const routerArb = fc
  .record({
    id: fc.constantFrom(...ROUTER_IDS),
    nets: fc.subarray(NET_IDS, { minLength: 1, maxLength: 3 }),
  })
  .map(({ id, nets }): Router => ({ id, name: id, networkIds: nets }));

// ---- labels and policies -----------------------------------------------------------------

const LABEL_SETS: Record<string, string>[] = [
  {},
  { app: 'web' },
  { app: 'db' },
  { app: 'web', tier: 'front' },
  { tier: 'back' },
];
const POLICY_IDS = ['p0', 'p1', 'p2'];

const sel = (
  matchLabels: Record<string, string>,
  matchExpressions: LabelSelector['matchExpressions'] = [],
): LabelSelector => ({ matchLabels, matchExpressions });
const selectorArb = fc.constantFrom<LabelSelector>(
  sel({}),
  sel({ app: 'web' }),
  sel({}, [{ key: 'app', operator: 'In', values: ['web', 'db'] }]),
  sel({}, [{ key: 'tier', operator: 'Exists', values: [] }]),
  sel({}, [{ key: 'app', operator: 'NotIn', values: ['web'] }]),
  sel({ app: 'db' }, [{ key: 'tier', operator: 'DoesNotExist', values: [] }]),
);
const peerArb: fc.Arbitrary<PolicyPeer> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      selector: selectorArb,
      networkIds: fc.subarray(NET_IDS, { maxLength: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<PolicyPeer>(
      { cidr: '10.0.0.0/8', except: ['10.10.0.0/24'] },
      { cidr: '0.0.0.0/0', except: [] },
    ),
  },
);
const portArb = fc.constantFrom<PolicyPort>(
  { protocol: 'tcp', port: 80, endPort: null },
  { protocol: 'udp', port: 53, endPort: null },
  { protocol: 'tcp', port: 8000, endPort: 8080 },
  { protocol: 'icmp', port: null, endPort: null },
  { protocol: 'any', port: null, endPort: null },
);
const ruleArb: fc.Arbitrary<PolicyRule> = fc.record({
  peers: fc.array(peerArb, { maxLength: 2 }),
  ports: fc.array(portArb, { maxLength: 2 }),
});
const directionArb = fc.option(fc.array(ruleArb, { maxLength: 2 }), { nil: null });
const policyArb: fc.Arbitrary<Policy> = fc
  .record({
    id: fc.constantFrom(...POLICY_IDS),
    selector: selectorArb,
    networkIds: fc.subarray(NET_IDS, { maxLength: 2 }),
    ingress: directionArb,
    egress: directionArb,
  })
  .map((p): Policy => ({
    ...p,
    name: p.id,
    networkIds: [...p.networkIds].sort(),
    ingress: p.ingress === null && p.egress === null ? [] : p.ingress,
  }));

/** Changes are generated against the engine's current topology at apply time. */
type ChangeSpec =
  | { t: 'host.upsert'; host: Host }
  | { t: 'host.delete'; id: string }
  | { t: 'network.upsert'; network: Network }
  | { t: 'network.delete'; id: string }
  | { t: 'instance.upsert'; id: string; net: string; host: string; labels?: number }
  | { t: 'instance.relabel'; id: string; labels: number }
  | { t: 'policy.upsert'; policy: Policy }
  | { t: 'policy.delete'; id: string }
  | { t: 'instance.delete'; id: string }
  | { t: 'instance.move'; id: string; host: string }
  | { t: 'block.upsert'; net: string; host: string }
  | { t: 'block.delete'; net: string; host: string }
  | { t: 'router.upsert'; router: Router }
  | { t: 'router.delete'; id: string }
  | { t: 'floatingip.upsert'; id: string; inst: number | null }
  | { t: 'floatingip.delete'; id: string };

const changeSpecArb: fc.Arbitrary<ChangeSpec> = fc.oneof(
  { weight: 2, arbitrary: hostArb.map((h) => ({ t: 'host.upsert' as const, host: h })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...HOST_IDS).map((id) => ({ t: 'host.delete' as const, id })),
  },
  { weight: 3, arbitrary: networkArb.map((n) => ({ t: 'network.upsert' as const, network: n })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...NET_IDS).map((id) => ({ t: 'network.delete' as const, id })),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('instance.upsert' as const),
      id: fc.constantFrom(...INST_IDS),
      net: fc.constantFrom(...NET_IDS),
      host: fc.constantFrom(...HOST_IDS),
      labels: fc.nat(LABEL_SETS.length - 1),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('instance.relabel' as const),
      id: fc.constantFrom(...INST_IDS),
      labels: fc.nat(LABEL_SETS.length - 1),
    }),
  },
  { weight: 3, arbitrary: policyArb.map((p) => ({ t: 'policy.upsert' as const, policy: p })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...POLICY_IDS).map((id) => ({ t: 'policy.delete' as const, id })),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(...INST_IDS).map((id) => ({ t: 'instance.delete' as const, id })),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('instance.move' as const),
      id: fc.constantFrom(...INST_IDS),
      host: fc.constantFrom(...HOST_IDS),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('block.upsert' as const),
      net: fc.constantFrom(...NET_IDS),
      host: fc.constantFrom(...HOST_IDS),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('block.delete' as const),
      net: fc.constantFrom(...NET_IDS),
      host: fc.constantFrom(...HOST_IDS),
    }),
  },
  { weight: 2, arbitrary: routerArb.map((r) => ({ t: 'router.upsert' as const, router: r })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...ROUTER_IDS).map((id) => ({ t: 'router.delete' as const, id })),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('floatingip.upsert' as const),
      id: fc.constantFrom(...FIP_IDS),
      inst: fc.option(fc.nat(3), { nil: null }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...FIP_IDS).map((id) => ({ t: 'floatingip.delete' as const, id })),
  },
);

/**
 * A populated starting point: every host and network exists, every (network, host) pair has
 * its block, a dozen instances and up to two routers. Random changes then start from a
 * fleet that has real state to break.
 */
const seedArb: fc.Arbitrary<ChangeSpec[]> = fc
  .tuple(
    fc.tuple(...HOST_IDS.map((id) => hostArbFor([id]))),
    fc.tuple(...NET_IDS.map((id) => networkArbFor([id]))),
    fc.array(
      fc.record({
        t: fc.constant('instance.upsert' as const),
        id: fc.constantFrom(...INST_IDS),
        net: fc.constantFrom(...NET_IDS),
        host: fc.constantFrom(...HOST_IDS),
        labels: fc.nat(LABEL_SETS.length - 1),
      }),
      { minLength: 6, maxLength: 14 },
    ),
    fc.array(routerArb, { maxLength: 2 }),
    fc.array(policyArb, { maxLength: 2 }),
    fc.array(
      fc.record({
        t: fc.constant('floatingip.upsert' as const),
        id: fc.constantFrom(...FIP_IDS),
        inst: fc.nat(3),
      }),
      { maxLength: 3 },
    ),
  )
  .map(([hs, ns, is, rs, ps, fs]): ChangeSpec[] => [
    ...hs.map((h) => ({ t: 'host.upsert' as const, host: h })),
    ...ns.map((n) => ({ t: 'network.upsert' as const, network: n })),
    ...NET_IDS.flatMap((net) =>
      HOST_IDS.map((h) => ({ t: 'block.upsert' as const, net, host: h })),
    ),
    ...is,
    ...rs.map((r) => ({ t: 'router.upsert' as const, router: r })),
    ...ps.map((p) => ({ t: 'policy.upsert' as const, policy: p })),
    ...fs,
  ]);

/** Turns a spec into a concrete Change; instance IPs follow their network's addressing. */
function toChange(s: ChangeSpec, t: Pick<Topology, 'networks' | 'instances'>): Change {
  const networks = t.networks;
  switch (s.t) {
    case 'policy.upsert':
      return { type: 'policy.upsert', policy: s.policy };
    case 'policy.delete':
      return { type: 'policy.delete', id: s.id };
    case 'instance.relabel': {
      const cur = t.instances.get(s.id);
      if (!cur) return { type: 'instance.delete', id: s.id };
      return { type: 'instance.upsert', instance: { ...cur, labels: LABEL_SETS[s.labels] } };
    }
    case 'host.upsert':
      return { type: 'host.upsert', host: s.host };
    case 'network.upsert':
      return { type: 'network.upsert', network: s.network };
    case 'router.upsert':
      return { type: 'router.upsert', router: s.router };
    case 'host.delete':
    case 'network.delete':
    case 'instance.delete':
    case 'router.delete':
      return { type: s.t, id: s.id };
    case 'instance.move':
      return { type: 'instance.move', id: s.id, hostId: s.host };
    case 'instance.upsert': {
      const idx = INST_IDS.indexOf(s.id);
      const net = networks.get(s.net) ?? mkNetwork(s.net, 0, 1500);
      const labels = LABEL_SETS[s.labels ?? 0];
      const i = instance(s.id, s.net, s.host, instanceIp(net, s.host, idx), mac(idx), labels);
      return { type: 'instance.upsert', instance: i };
    }
    case 'block.upsert':
      return {
        type: 'block.upsert',
        block: { networkId: s.net, hostId: s.host, cidr: blockCidr(s.net, s.host) },
      };
    case 'block.delete':
      return { type: 'block.delete', cidr: blockCidr(s.net, s.host) };
    case 'floatingip.delete':
      return { type: 'floatingip.delete', id: s.id };
    case 'floatingip.upsert': {
      const k = FIP_IDS.indexOf(s.id);
      const inst = s.inst === null ? null : INST_IDS[s.inst * FIP_IDS.length + k];
      // As the database's foreign key: only an existing instance can be bound.
      const instanceId = inst !== null && t.instances.has(inst) ? inst : null;
      const floatingIp = { id: s.id, address: `198.51.100.${10 + k}`, poolId: 'p', instanceId };
      return { type: 'floatingip.upsert', floatingIp };
    }
  }
}

/** A seed topology built by replaying changes on an empty engine. */
function build(specs: readonly ChangeSpec[]): DesiredStateEngine {
  const e = new DesiredStateEngine(topology({}));
  for (const s of specs) e.apply(toChange(s, e.topology()));
  return e;
}

function allHostIds(...engines: DesiredStateEngine[]): Set<string> {
  return new Set(engines.flatMap((e) => [...e.hostIds()]));
}

function expectMatchesFullRecompute(e: DesiredStateEngine): void {
  const full = computeAll(e.topology());
  for (const h of new Set([...full.keys(), ...e.hostIds()])) {
    const inc = e.stateOf(h);
    const ref = full.get(h) ?? EMPTY_STATE;
    if (!statesEqual(inc, ref)) {
      // toEqual gives a readable report of the mismatch.
      expect([h, [...inc.values()]]).toEqual([h, [...ref.values()]]);
    }
  }
}

const RUNS = { numRuns: 150 };

describe('incremental engine', () => {
  it('equals a full recompute after every change of a random sequence, with clean diffs', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.array(changeSpecArb, { minLength: 1, maxLength: 30 }),
        (seed, specs) => {
          const e = build(seed);
          const agents = new Map<string, FakeAgent>();
          for (const s of specs) {
            // stateOf is live (updated in place by apply): keep copies of the previous states.
            const before = new Map([...e.hostIds()].map((h) => [h, new Map(e.stateOf(h))]));
            const u = e.apply(toChange(s, e.topology()));
            for (const [h, hu] of u.hosts) {
              // The diff is exactly the step from the previous to the new state…
              expect(statesEqual(applyDiff(before.get(h) ?? EMPTY_STATE, hu.diff), hu.state)).toBe(
                true,
              );
              // …and it is well-ordered for a strict agent.
              let agent = agents.get(h);
              if (!agent) agents.set(h, (agent = new FakeAgent(before.get(h) ?? EMPTY_STATE)));
              agent.apply(hu.diff);
            }
            expect(u.recomputed).toBeGreaterThanOrEqual(u.hosts.size);
            expectMatchesFullRecompute(e);
          }
          for (const [h, agent] of agents)
            expect(statesEqual(agent.state(), e.stateOf(h))).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it('gives the same result when a batch is applied at once or one change at a time', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.array(changeSpecArb, { minLength: 1, maxLength: 20 }),
        (seed, specs) => {
          const one = build(seed);
          const batch = build(seed);
          const changes = specs.map((s) => toChange(s, one.topology()));
          for (const c of changes) one.apply(c);
          batch.apply(changes);
          for (const h of allHostIds(one, batch)) {
            expect(statesEqual(one.stateOf(h), batch.stateOf(h))).toBe(true);
          }
          expectMatchesFullRecompute(batch);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('does not depend on the order in which independent changes arrive', () => {
    // Changes to distinct entities commute: whatever the order, the final topology is the
    // same, so the states must be too (even when an instance arrives before its network).
    const target = (s: ChangeSpec): string => {
      switch (s.t) {
        case 'host.upsert':
          return `host:${s.host.id}`;
        case 'network.upsert':
          return `network:${s.network.id}`;
        case 'router.upsert':
          return `router:${s.router.id}`;
        case 'host.delete':
          return `host:${s.id}`;
        case 'network.delete':
          return `network:${s.id}`;
        case 'router.delete':
          return `router:${s.id}`;
        case 'instance.delete':
        case 'instance.move':
        case 'instance.upsert':
        case 'instance.relabel':
          return `instance:${s.id}`;
        case 'policy.upsert':
          return `policy:${s.policy.id}`;
        case 'policy.delete':
          return `policy:${s.id}`;
        case 'block.upsert':
        case 'block.delete':
          return `block:${s.net}:${s.host}`;
        case 'floatingip.upsert':
        case 'floatingip.delete':
          return `floatingip:${s.id}`;
      }
    };
    const independent = fc
      .uniqueArray(changeSpecArb, { selector: target, minLength: 2, maxLength: 20 })
      .chain((specs) =>
        fc.tuple(
          fc.constant(specs),
          fc.shuffledSubarray(specs, { minLength: specs.length, maxLength: specs.length }),
        ),
      );
    fc.assert(
      fc.property(seedArb, independent, (seed, [xs, ys]) => {
        const a = build(seed);
        const b = build(seed);
        // Instance IPs are derived from the network at generation time; fix them first.
        const nets = a.topology();
        const cx = xs.map((s) => toChange(s, nets));
        const cy = ys.map((s) => toChange(s, nets));
        for (const c of cx) a.apply(c);
        for (const c of cy) b.apply(c);
        for (const h of allHostIds(a, b))
          expect(statesEqual(a.stateOf(h), b.stateOf(h))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

describe('incremental engine, batches', () => {
  /**
   * A batch: random changes, plus (when asked) an instance created and deleted again inside
   * the same batch, and an instance created then moved.
   */
  const batchArb = fc
    .tuple(
      fc.array(changeSpecArb, { minLength: 1, maxLength: 15 }),
      fc.option(
        fc.record({
          id: fc.constantFrom(...INST_IDS),
          net: fc.constantFrom(...NET_IDS),
          host: fc.constantFrom(...HOST_IDS),
          to: fc.constantFrom(...HOST_IDS),
          at: fc.nat(),
          moveInstead: fc.boolean(),
        }),
      ),
    )
    .map(([specs, pair]): ChangeSpec[] => {
      if (!pair) return specs;
      const extra: ChangeSpec[] = [
        { t: 'instance.upsert', id: pair.id, net: pair.net, host: pair.host },
        pair.moveInstead
          ? { t: 'instance.move', id: pair.id, host: pair.to }
          : { t: 'instance.delete', id: pair.id },
      ];
      const at = pair.at % (specs.length + 1);
      return [...specs.slice(0, at), ...extra, ...specs.slice(at)];
    });

  it('after every batch equals a full recompute, with diffs exactly diff(before, after)', () => {
    fc.assert(
      fc.property(seedArb, fc.array(batchArb, { minLength: 1, maxLength: 6 }), (seed, batches) => {
        const e = build(seed);
        const agents = new Map<string, FakeAgent>();
        for (const specs of batches) {
          const nets = e.topology();
          const changes = specs.map((s) => toChange(s, nets));
          const before = new Map([...e.hostIds()].map((h) => [h, new Map(e.stateOf(h))]));
          const u = e.apply(changes);
          for (const h of allHostIds(e)) if (!before.has(h)) before.set(h, new Map());
          for (const [h, prev] of before) {
            const now = e.stateOf(h);
            const hu = u.hosts.get(h);
            // A host is reported exactly when its state changed…
            expect(hu !== undefined).toBe(!statesEqual(prev, now));
            if (!hu) continue;
            // …with the same diff as the reference differ, in content and order…
            expect(hu.diff).toEqual(diff(prev, now));
            expect(statesEqual(applyDiff(prev, hu.diff), hu.state)).toBe(true);
            // …that a strict agent accepts.
            let agent = agents.get(h);
            if (!agent) agents.set(h, (agent = new FakeAgent(prev)));
            agent.apply(hu.diff);
          }
          expectMatchesFullRecompute(e);
        }
        for (const [h, agent] of agents)
          expect(statesEqual(agent.state(), e.stateOf(h))).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('an instance created and deleted in one batch changes nothing', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.constantFrom(...NET_IDS),
        fc.constantFrom(...HOST_IDS),
        (seed, net, h) => {
          const e = build(seed);
          const nets = e.topology();
          // An id the seed never uses.
          const extra = toChange({ t: 'instance.upsert', id: 'i13', net, host: h }, nets);
          if (e.topology().instances.has('i13')) return;
          const u = e.apply([extra, { type: 'instance.delete', id: 'i13' }]);
          expect(u.hosts.size).toBe(0);
          expectMatchesFullRecompute(e);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('diff', () => {
  const stateArb = fc
    .tuple(seedArb, fc.array(changeSpecArb, { maxLength: 10 }))
    .map(([seed, specs]) => build([...seed, ...specs]))
    .map((e) => new Map([...e.hostIds()].map((h) => [h, e.stateOf(h)])));

  it('applyDiff(a, diff(a, b)) equals b, and a strict agent accepts the diff', () => {
    fc.assert(
      fc.property(stateArb, stateArb, (sa, sb) => {
        for (const h of new Set([...sa.keys(), ...sb.keys()])) {
          const a: DesiredState = sa.get(h) ?? EMPTY_STATE;
          const b: DesiredState = sb.get(h) ?? EMPTY_STATE;
          const d = diff(a, b);
          expect(statesEqual(applyDiff(a, d), b)).toBe(true);
          const agent = new FakeAgent(a);
          agent.apply(d);
          expect(statesEqual(agent.state(), b)).toBe(true);
          expect(diff(b, b)).toEqual({ upserts: [], deletes: [] });
        }
      }),
      { numRuns: 100 },
    );
  });

  it('names every device within IFNAMSIZ and with the ownership prefix', () => {
    fc.assert(
      fc.property(stateArb, (states) => {
        for (const s of states.values()) {
          for (const r of s.values()) {
            const dev = deviceOf(r);
            if (!dev) continue;
            expect(dev.length).toBeLessThanOrEqual(15);
            // VLAN uplinks keep the operator's `<uplink>.<vid>` convention (DATAPLANE §2).
            if (r.kind !== 'uplink') expect(dev.startsWith('lt')).toBe(true);
          }
        }
      }),
      { numRuns: 50 },
    );
  });
});

describe('fan-out and mobility', () => {
  /** An overlay network spanning k hosts out of a larger fleet. */
  function fleet(k: number, model: 'overlay' | 'fabric' = 'overlay') {
    const hosts = Array.from({ length: 20 }, (_, i) => host(`h${i}`, `192.0.2.${10 + i}`));
    const nets = [
      network('blue', model, '10.10.0.0/24', {
        encapsulation: 'vxlan',
        transport: 'vxlan',
        vni: 10001,
      }),
      network('red', 'overlay', '10.20.0.0/24', { encapsulation: 'vxlan', vni: 10002 }),
    ];
    const insts = [
      ...Array.from({ length: k }, (_, i) =>
        instance(`b${i}`, 'blue', `h${i}`, `10.10.0.${10 + i}`, mac(i)),
      ),
      // red lives on other hosts: h10..h14
      ...Array.from({ length: 5 }, (_, i) =>
        instance(`r${i}`, 'red', `h${10 + i}`, `10.20.0.${10 + i}`, mac(100 + i)),
      ),
    ];
    return topology({ hosts, networks: nets, instances: insts });
  }

  it.each(['overlay', 'fabric'] as const)(
    '%s: a change to one instance of a network spanning k hosts touches exactly those k hosts',
    (model) => {
      const k = 6;
      const e = new DesiredStateEngine(fleet(k, model));
      const span = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5'];
      const created = e.apply({
        type: 'instance.upsert',
        instance: instance('new', 'blue', 'h2', '10.10.0.99', '02:00:00:00:09:99'),
      });
      expect([...created.hosts.keys()].sort()).toEqual(span);
      expect(created.recomputed).toBe(k);
      const deleted = e.apply({ type: 'instance.delete', id: 'new' });
      expect([...deleted.hosts.keys()].sort()).toEqual(span);
    },
  );

  it('an instance create in a k-host VXLAN network costs O(k) resource operations', () => {
    // Many instances on each of the k hosts: the cost must not depend on them.
    const k = 8;
    const perHost = 50;
    const hosts = Array.from({ length: 12 }, (_, i) => host(`h${i}`, `192.0.2.${10 + i}`));
    const blue = network('blue', 'overlay', '10.10.0.0/16', { encapsulation: 'vxlan', vni: 10001 });
    const insts = Array.from({ length: k * perHost }, (_, j) =>
      instance(`b${j}`, 'blue', `h${j % k}`, `10.10.${j >> 8}.${(j & 255) + 2}`, mac(j)),
    );
    const e = new DesiredStateEngine(topology({ hosts, networks: [blue], instances: insts }));
    const s0 = e.stats();
    const created = e.apply({
      type: 'instance.upsert',
      instance: instance('new', 'blue', 'h3', '10.10.200.1', '02:00:00:00:09:99'),
    });
    const s1 = e.stats();
    // Its port on h3; one FDB and one neighbour entry on each of the k - 1 other hosts.
    expect(s1.resourceOps - s0.resourceOps).toBe(1 + 2 * (k - 1));
    expect(s1.sharesComputed - s0.sharesComputed).toBe(0);
    expect(s1.hostWideComputed - s0.hostWideComputed).toBe(0);
    expect(s1.fallbacks).toBe(0);
    expect(s1.changes['instance.upsert']).toEqual({ handled: 1, recomputed: 0 });
    expect(created.hosts.size).toBe(k);
    for (const [h, hu] of created.hosts) {
      expect(hu.diff.upserts.map((u) => u.op)).toEqual(
        h === 'h3' ? ['create'] : ['create', 'create'],
      );
      expect(hu.diff.deletes).toEqual([]);
    }
    // The remote entries are one object on all k - 1 hosts (interned).
    const fdbKey = 'fdb:ltvx10001:02:00:00:00:09:99';
    const fdbs = new Set(
      [...created.hosts.keys()].filter((h) => h !== 'h3').map((h) => e.stateOf(h).get(fdbKey)),
    );
    expect(fdbs.size).toBe(1);

    // Deleting it again: as many operations, still nothing recomputed.
    e.apply({ type: 'instance.delete', id: 'new' });
    const s2 = e.stats();
    expect(s2.resourceOps - s1.resourceOps).toBe(1 + 2 * (k - 1));
    expect(s2.sharesComputed - s1.sharesComputed).toBe(0);
    expect(s2.changes['instance.delete']).toEqual({ handled: 1, recomputed: 0 });

    // A move between two hosts of the network: the port leaves one, arrives on the other, and
    // the FDB entry toward it changes on the rest (the neighbour entries stay).
    e.apply({ type: 'instance.move', id: 'b0', hostId: 'h1' });
    const s3 = e.stats();
    // h0: port deleted, fdb + neigh created; h1: port created, fdb + neigh deleted;
    // the k - 2 others: fdb updated in place.
    expect(s3.resourceOps - s2.resourceOps).toBe(6 + (k - 2));
    expect(s3.sharesComputed - s2.sharesComputed).toBe(0);
    expectMatchesFullRecompute(e);

    // Joining a new host recomputes only that host's share, and adds the flood entry and the
    // instance's entries on the others.
    e.apply({
      type: 'instance.upsert',
      instance: instance('far', 'blue', 'h11', '10.10.201.1', '02:00:00:00:09:98'),
    });
    const s4 = e.stats();
    expect(s4.sharesComputed - s3.sharesComputed).toBe(1);
    expect(s4.changes['instance.upsert'].recomputed).toBe(1);
    expectMatchesFullRecompute(e);
  });

  it('with a router, the peers of the network are touched too', () => {
    const t = fleet(6);
    const e = new DesiredStateEngine({
      ...t,
      routers: new Map([['r1', { id: 'r1', name: 'r1', networkIds: ['blue', 'red'] }]]),
    });
    const u = e.apply({
      type: 'instance.upsert',
      instance: instance('new', 'blue', 'h2', '10.10.0.99', '02:00:00:00:09:99'),
    });
    // h10..h14 host red, and route into blue locally: they hold blue's FDB too.
    expect([...u.hosts.keys()].sort()).toEqual(
      ['h0', 'h1', 'h2', 'h3', 'h4', 'h5', 'h10', 'h11', 'h12', 'h13', 'h14'].sort(),
    );
  });

  it('moving an instance yields exactly the diffs needed on old host, new host and peers', () => {
    const t = fleet(4); // b0..b3 on h0..h3
    const stay = instance('stay', 'blue', 'h1', '10.10.0.50', '02:00:00:00:05:00');
    const e = new DesiredStateEngine({
      ...t,
      instances: new Map([...t.instances, [stay.id, stay]]),
    });
    const m = mac(1); // b1: 10.10.0.11 on h1
    const veth1 = vethName('b1');
    const br = bridgeName('blue');
    const u = e.apply({ type: 'instance.move', id: 'b1', hostId: 'h7' });
    expect([...u.hosts.keys()].sort()).toEqual(['h0', 'h1', 'h2', 'h3', 'h7']);
    const ops = (h: string) => u.hosts.get(h)!.diff.upserts.map((r) => `${r.op} ${r.key}`);
    const dels = (h: string) => u.hosts.get(h)!.diff.deletes.map((r) => r.key);

    // Old host: unplug b1; reach it over the overlay at h7 from now on.
    expect(dels('h1')).toEqual([`port:${veth1}`]);
    expect(ops('h1')).toEqual([
      'create fdb:ltvx10001:00:00:00:00:00:00:192.0.2.17',
      `create fdb:ltvx10001:${m}`,
      `create neigh:${br}:10.10.0.11`,
    ]);
    // Peers: b1's FDB entry now points at h7 (in place), and h7 joins the flood list.
    for (const peer of ['h0', 'h2', 'h3']) {
      expect(ops(peer)).toEqual([
        'create fdb:ltvx10001:00:00:00:00:00:00:192.0.2.17',
        `update fdb:ltvx10001:${m}`,
      ]);
      expect(u.hosts.get(peer)!.state.get(`fdb:ltvx10001:${m}`)!.spec).toMatchObject({
        dst: '192.0.2.17',
      });
      expect(dels(peer)).toEqual([]);
    }
    // New host: creates only — bridge, VXLAN device, port, flood list and remote entries.
    expect(dels('h7')).toEqual([]);
    expect(ops('h7').every((o) => o.startsWith('create '))).toBe(true);
    expect(ops('h7')).toContain(`create port:${veth1}`);
    expect(ops('h7')).not.toContain(`create fdb:ltvx10001:${m}`);

    // Moving the last instance off a host removes its whole presence, and peers drop it from
    // their flood list; no stale entry remains anywhere.
    const v = e.apply({ type: 'instance.move', id: 'stay', hostId: 'h0' });
    expect(v.hosts.get('h1')!.state.size).toBe(0);
    for (const peer of ['h2', 'h3', 'h7']) {
      expect(v.hosts.get(peer)!.diff.deletes.map((r) => r.key)).toEqual([
        'fdb:ltvx10001:00:00:00:00:00:00:192.0.2.11',
      ]);
    }
    expectMatchesFullRecompute(e);
  });

  it('a labels-only upsert changes no host, touches no resource and keeps the labels', () => {
    const t = fleet(4); // b0..b3 on h0..h3
    const e = new DesiredStateEngine(t);
    const b1 = t.instances.get('b1')!;
    const s0 = e.stats();
    const u = e.apply({
      type: 'instance.upsert',
      instance: { ...b1, labels: { app: 'web', 'example.com/tier': 'front' } },
    });
    expect(u.hosts.size).toBe(0);
    expect(u.recomputed).toBe(0);
    const s1 = e.stats();
    expect(s1.resourceOps).toBe(s0.resourceOps);
    expect(s1.sharesComputed).toBe(s0.sharesComputed);
    expect(s1.fallbacks).toBe(s0.fallbacks);
    expect(s1.hostWideComputed).toBe(s0.hostWideComputed);
    expect(e.topology().instances.get('b1')!.labels).toEqual({
      app: 'web',
      'example.com/tier': 'front',
    });
    // An upsert from a log written before instances had labels counts as no labels.
    const { labels: _ignored, ...unlabelled } = b1;
    const v = e.apply({ type: 'instance.upsert', instance: unlabelled as typeof b1 });
    expect(v.hosts.size).toBe(0);
    expect(e.topology().instances.get('b1')!.labels).toEqual({});
    expectMatchesFullRecompute(e);
  });

  it('a move and a relabel in one upsert give exactly the diffs of the move', () => {
    const moved = new DesiredStateEngine(fleet(4));
    const both = new DesiredStateEngine(fleet(4));
    const b1 = fleet(4).instances.get('b1')!;
    const m = moved.apply({ type: 'instance.move', id: 'b1', hostId: 'h7' });
    const mb = both.apply({
      type: 'instance.upsert',
      instance: { ...b1, hostId: 'h7', labels: { app: 'db' } },
    });
    expect([...mb.hosts.keys()].sort()).toEqual([...m.hosts.keys()].sort());
    for (const [h, x] of m.hosts) expect(mb.hosts.get(h)!.diff).toEqual(x.diff);
    expect(both.topology().instances.get('b1')).toMatchObject({
      hostId: 'h7',
      labels: { app: 'db' },
    });
    expectMatchesFullRecompute(both);
  });

  it('replaces a VXLAN device whose local address changed and re-sends what lives on it', () => {
    const e = new DesiredStateEngine(GOLDEN.overlayVxlan);
    const agent = new FakeAgent(e.stateOf('h2'));
    const u = e.apply({ type: 'host.upsert', host: host('h2', '192.0.2.99') });
    const d = u.hosts.get('h2')!.diff;
    expect(d.upserts.find((r) => r.key === 'vxlan:ltvx10001')?.op).toBe('replace');
    expect(d.upserts.map((r) => r.key)).toContain('fdb:ltvx10001:02:00:00:00:00:0a');
    agent.apply(d);
    expect(statesEqual(agent.state(), e.stateOf('h2'))).toBe(true);
    // h1 now floods toward the new VTEP address.
    expect(u.hosts.get('h1')!.state.has('fdb:ltvx10001:00:00:00:00:00:00:192.0.2.99')).toBe(true);
    expect(u.hosts.has('h3')).toBe(false);
  });
});
