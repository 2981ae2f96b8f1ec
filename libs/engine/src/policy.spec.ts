/**
 * Network policy in the engine: golden per-host resources, the cost of a label change, the
 * trace's policy verdicts, and the preview checked against the states the engine then
 * computes (the incremental = full-recompute properties with policies are in engine.spec).
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type {
  Instance,
  LabelSelector,
  Policy,
  PolicyRule,
  Topology,
} from '../../model/src/index.js';
import {
  bridgeName,
  computeAll,
  DesiredStateEngine,
  peerSetOf,
  policyTraceHook,
  previewPolicy,
  statesEqual,
  trace,
  vethName,
  type DesiredState,
  type Resource,
} from './index.js';
import { chainAllows, describeSpace, intersect, subtract, isEmpty } from './policy/evaluate.js';
import { host, instance, network, topology, GOLDEN } from './fixtures.test.js';

const sel = (matchLabels: Record<string, string>): LabelSelector => ({
  matchLabels,
  matchExpressions: [],
});

function policy(
  id: string,
  selector: LabelSelector,
  ingress: PolicyRule[] | null,
  egress: PolicyRule[] | null = null,
  networkIds: string[] = [],
): Policy {
  return { id, name: id, selector, networkIds, ingress, egress };
}

const WEB_FROM_DB = policy('web-from-db', sel({ app: 'web' }), [
  {
    peers: [{ selector: sel({ app: 'db' }), networkIds: [] }],
    ports: [{ protocol: 'tcp', port: 80, endPort: null }],
  },
]);

/** GOLDEN.router (blue vxlan, red routed, green bridge on r1; grey isolated) with labels. */
function labelled(policies: Policy[], labels: Record<string, Record<string, string>>): Topology {
  const t = GOLDEN.router;
  const instances = new Map<string, Instance>();
  for (const i of t.instances.values()) instances.set(i.id, { ...i, labels: labels[i.id] ?? {} });
  return { ...t, instances, policies: new Map(policies.map((p) => [p.id, p])) };
}

const LABELS = { a: { app: 'web' }, b: { app: 'db' }, d: { app: 'db' }, x: { app: 'db' } };

function policyKinds(s: DesiredState): Resource[] {
  return [...s.values()].filter((r) => r.kind === 'policy' || r.kind === 'pmember');
}

describe('policy resources', () => {
  it('golden: chains only where a selected instance lives, sets of reachable peers only', () => {
    const all = computeAll(labelled([WEB_FROM_DB], LABELS));
    // a (web, blue, h1) is selected. Its peers: db instances in reach(blue) = blue, red,
    // green (router r1): b (blue) and d (red) — not x, which is in the isolated grey network
    // and shares a subnet with blue.
    const set = peerSetOf({ selector: sel({ app: 'db' }), networkIds: [] }, 'blue').name;
    expect(policyKinds(all.get('h1')!)).toEqual([
      {
        kind: 'policy',
        key: `policy:${vethName('a')}`,
        spec: {
          instance: 'a',
          name: 'vm-a',
          network: 'blue',
          bridge: bridgeName('blue'),
          veth: vethName('a'),
          address: '10.10.0.2',
          ingress: [
            {
              policy: 'web-from-db',
              policyId: 'web-from-db',
              rule: 0,
              peers: [{ set }],
              ports: [{ protocol: 'tcp', port: 80, endPort: null }],
            },
          ],
          egress: null,
        },
      },
      { kind: 'pmember', key: `pmember:${set}:10.10.0.3`, spec: { set, address: '10.10.0.3' } },
      { kind: 'pmember', key: `pmember:${set}:10.245.0.2`, spec: { set, address: '10.245.0.2' } },
    ]);
    expect(policyKinds(all.get('h2')!)).toEqual([]);
    expect(policyKinds(all.get('h3')!)).toEqual([]);
  });

  it('a label change costs one write per host whose chains name the set, and nothing else', () => {
    // k hosts, each with one web instance (selected, naming the db set) and a db instance.
    const k = 12;
    const hosts = Array.from({ length: k }, (_, i) => host(`h${i}`, `192.0.2.${10 + i}`));
    const net = network('blue', 'overlay', '10.10.0.0/24', { encapsulation: 'vxlan', vni: 7 });
    const instances = hosts.flatMap((h, i) => [
      instance(`w${i}`, 'blue', h.id, `10.10.0.${10 + i}`, `02:00:00:00:01:${i + 10}`, {
        app: 'web',
      }),
      instance(`o${i}`, 'blue', h.id, `10.10.0.${100 + i}`, `02:00:00:00:02:${i + 10}`, {
        app: 'other',
      }),
    ]);
    const t = { ...topology({ hosts, networks: [net], instances }) };
    const e = new DesiredStateEngine({ ...t, policies: new Map([[WEB_FROM_DB.id, WEB_FROM_DB]]) });
    const before = e.stats();
    const o3 = e.topology().instances.get('o3')!;
    const u = e.apply({ type: 'instance.upsert', instance: { ...o3, labels: { app: 'db' } } });
    const after = e.stats();
    expect(u.hosts.size).toBe(k);
    for (const hu of u.hosts.values()) {
      expect(hu.diff.deletes).toEqual([]);
      expect(hu.diff.upserts.map((x) => x.key)).toEqual([
        `pmember:${peerSetOf({ selector: sel({ app: 'db' }), networkIds: [] }, 'blue').name}:10.10.0.103`,
      ]);
    }
    expect(after.resourceOps - before.resourceOps).toBe(k);
    expect(after.sharesComputed).toBe(before.sharesComputed);
    expect(after.policy.membershipChanges - before.policy.membershipChanges).toBe(1);
    expect(after.policy.setsComputed).toBe(before.policy.setsComputed);
    // Relabelling an instance no chain names as a peer and no policy selects: no host.
    const o4 = e.topology().instances.get('o4')!;
    expect(
      e.apply({ type: 'instance.upsert', instance: { ...o4, labels: { app: 'x' } } }).hosts.size,
    ).toBe(0);
  });

  it('a new policy changes only the hosts of the instances it selects', () => {
    const t = labelled([], LABELS);
    const e = new DesiredStateEngine(t);
    const u = e.apply({ type: 'policy.upsert', policy: WEB_FROM_DB });
    expect([...u.hosts.keys()]).toEqual(['h1']);
    const del = e.apply({ type: 'policy.delete', id: WEB_FROM_DB.id });
    expect([...del.hosts.keys()]).toEqual(['h1']);
    expect(policyKinds(e.stateOf('h1'))).toEqual([]);
  });
});

describe('trace with policy', () => {
  const t = labelled([WEB_FROM_DB], LABELS);
  const states = computeAll(t);
  const stateOf = (h: string) => states.get(h) ?? new Map();
  const run = (from: string, to: string, proto: 'tcp' | 'icmp', port?: number) =>
    trace(t, stateOf, { from, to: { instance: to }, proto, port }, { policy: policyTraceHook });

  it('names the rule that allows a flow, and lets its reply pass', () => {
    const r = run('d', 'a', 'tcp', 80);
    expect(r.verdict).toBe('delivered');
    const hop = r.hops.find((h) => h.step === 'policy ingress')!;
    expect(hop.detail).toBe('allowed by policy web-from-db ingress rule 0');
    expect(hop.resources).toEqual([
      `policy:${vethName('a')}`,
      `pmember:${peerSetOf({ selector: sel({ app: 'db' }), networkIds: [] }, 'blue').name}:10.245.0.2`,
    ]);
    // The reply leaves a through its egress (not isolated) and enters d (not selected).
    expect(r.hops.filter((h) => h.step.startsWith('reply policy'))).toEqual([]);
  });

  it('names the default deny that drops a flow on another port or from a non-peer', () => {
    const r = run('d', 'a', 'tcp', 81);
    expect(r.verdict).toBe('dropped');
    expect(r.reason).toMatch(
      /network policy denies ingress of vm-a: no ingress rule of policy web-from-db/,
    );
    expect(run('g', 'a', 'tcp', 80).verdict).toBe('dropped'); // g (green) has no db label
    expect(run('b', 'a', 'tcp', 80).verdict).toBe('delivered');
  });

  it('shows the reply of an allowed connection as passing an isolated direction', () => {
    // a's egress is isolated (tcp 80 to db only); a → d:80 is allowed, its reply enters a's
    // ingress, which allows nothing from d on the reply's port: conntrack lets it in.
    const out = policy(
      'web-out',
      sel({ app: 'web' }),
      [],
      [
        {
          peers: [{ selector: sel({ app: 'db' }), networkIds: [] }],
          ports: [{ protocol: 'tcp', port: 80, endPort: null }],
        },
      ],
    );
    const t2 = labelled([out], LABELS);
    const s2 = computeAll(t2);
    const r = trace(
      t2,
      (h) => s2.get(h) ?? new Map(),
      {
        from: 'a',
        to: { instance: 'd' },
        proto: 'tcp',
        port: 80,
      },
      { policy: policyTraceHook },
    );
    expect(r.verdict).toBe('delivered');
    expect(r.hops.find((h) => h.step === 'reply policy ingress')?.detail).toMatch(/reply/);
    const back = trace(
      t2,
      (h) => s2.get(h) ?? new Map(),
      {
        from: 'd',
        to: { instance: 'a' },
        proto: 'tcp',
        port: 80,
      },
      { policy: policyTraceHook },
    );
    expect(back.verdict).toBe('dropped');
  });
});

// ---- the preview -----------------------------------------------------------------------

/** Every flow's verdict, read from the engine's states as the agents would enforce them. */
function verdicts(t: Topology, states: ReadonlyMap<string, DesiredState>) {
  const out = new Map<string, ReturnType<typeof chainAllows>>();
  const chainOf = (i: Instance) => {
    const r = states.get(i.hostId)?.get(`policy:${vethName(i.id)}`);
    return r?.kind === 'policy' ? r.spec : null;
  };
  const reach = (a: Instance, b: Instance) =>
    a.networkId === b.networkId ||
    [...t.routers.values()].some(
      (r) => r.networkIds.includes(a.networkId) && r.networkIds.includes(b.networkId),
    );
  for (const s of t.instances.values()) {
    for (const d of t.instances.values()) {
      if (s.id === d.id || !reach(s, d)) continue;
      const src = states.get(s.hostId)!;
      const dst = states.get(d.hostId)!;
      const eg = chainAllows(chainOf(s)?.egress ?? null, d.ip, (set, a) =>
        src.has(`pmember:${set}:${a}`),
      );
      const ig = chainAllows(chainOf(d)?.ingress ?? null, s.ip, (set, a) =>
        dst.has(`pmember:${set}:${a}`),
      );
      out.set(`${s.id}>${d.id}`, intersect(eg, ig));
    }
  }
  return out;
}

const LABEL_CHOICES: Record<string, string>[] = [
  {},
  { app: 'web' },
  { app: 'db' },
  { app: 'web', tier: 'front' },
];
const selectorArb = fc.constantFrom(sel({}), sel({ app: 'web' }), sel({ app: 'db' }), {
  matchLabels: {},
  matchExpressions: [{ key: 'tier', operator: 'Exists' as const, values: [] }],
});
const ruleArb: fc.Arbitrary<PolicyRule> = fc.record({
  peers: fc.array(
    fc.oneof(
      fc.record({ selector: selectorArb, networkIds: fc.constantFrom([], ['red'], ['blue']) }),
      fc.constantFrom({ cidr: '10.245.0.0/16', except: ['10.245.0.64/26'] }),
    ),
    { maxLength: 2 },
  ),
  ports: fc.array(
    fc.constantFrom(
      { protocol: 'tcp' as const, port: 80, endPort: null },
      { protocol: 'tcp' as const, port: 70, endPort: 90 },
      { protocol: 'udp' as const, port: null, endPort: null },
      { protocol: 'icmp' as const, port: null, endPort: null },
    ),
    { maxLength: 2 },
  ),
});
const policyArb = (id: string) =>
  fc
    .record({
      selector: selectorArb,
      networkIds: fc.constantFrom([], ['blue'], ['red', 'green']),
      ingress: fc.option(fc.array(ruleArb, { maxLength: 2 }), { nil: null }),
      egress: fc.option(fc.array(ruleArb, { maxLength: 2 }), { nil: null }),
    })
    .map((p): Policy => ({
      id,
      name: id,
      ...p,
      ingress: p.ingress === null && p.egress === null ? [] : p.ingress,
    }));

describe('policy preview', () => {
  it('lists selection, flows and hosts exactly as the engine then enforces them', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(LABEL_CHOICES.length - 1), { minLength: 6, maxLength: 6 }),
        fc.option(policyArb('p0'), { nil: null }),
        fc.option(policyArb('p1'), { nil: null }),
        fc.option(policyArb('p1'), { nil: null }),
        (labelIdx, other, before, after) => {
          const ids = ['a', 'b', 'd', 'e', 'g', 'x'];
          const labels = Object.fromEntries(ids.map((id, i) => [id, LABEL_CHOICES[labelIdx[i]]]));
          const t = labelled(
            [other, before].filter((p): p is Policy => p !== null),
            labels,
          );
          const e = new DesiredStateEngine(t);
          const statesBefore = new Map([...e.hostIds()].map((h) => [h, new Map(e.stateOf(h))]));
          const p = previewPolicy(t, before, after);
          const u = e.apply(
            after ? { type: 'policy.upsert', policy: after } : { type: 'policy.delete', id: 'p1' },
          );
          const statesAfter = new Map([...e.hostIds()].map((h) => [h, new Map(e.stateOf(h))]));
          // Hosts: exactly those the engine changes.
          expect(p.hosts).toEqual([...u.hosts.keys()].sort());
          // Flows: exactly the verdicts that change between the two sets of states.
          const vb = verdicts(t, statesBefore);
          const va = verdicts(e.topology(), statesAfter);
          const expectDenied: unknown[] = [];
          const expectAllowed: unknown[] = [];
          for (const [k, b] of vb) {
            const a = va.get(k)!;
            const [from, to] = k.split('>');
            const lost = subtract(b, a);
            const gained = subtract(a, b);
            if (!isEmpty(lost)) expectDenied.push({ from, to, ports: describeSpace(lost) });
            if (!isEmpty(gained)) expectAllowed.push({ from, to, ports: describeSpace(gained) });
          }
          const byKey = (x: { from: string; to: string }) => `${x.from}>${x.to}`;
          const sort = <T extends { from: string; to: string }>(xs: T[]) =>
            [...xs].sort((x, y) => (byKey(x) < byKey(y) ? -1 : 1));
          expect(sort([...p.denied])).toEqual(sort(expectDenied as never[]));
          expect(sort([...p.allowed])).toEqual(sort(expectAllowed as never[]));
          expect(p.truncated).toBe(false);
          // The full recompute agrees with the engine after the change.
          const full = computeAll(e.topology());
          for (const h of e.hostIds()) expect(statesEqual(e.stateOf(h), full.get(h)!)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a default-deny ingress policy lists its instances and every flow into them', () => {
    const t = labelled([], LABELS);
    const deny = policy('deny-web', sel({ app: 'web' }), []);
    const p = previewPolicy(t, null, deny);
    expect(p.selected).toEqual({ added: ['a'], removed: [] });
    const into = p.denied.map((f) => `${f.from}>${f.to}`).sort();
    // a (blue) is reached by blue and its router peers red and green; never by grey's x.
    expect(into).toEqual(['b>a', 'd>a', 'e>a', 'g>a']);
    for (const f of p.denied)
      expect(f.ports).toEqual([{ protocol: 'any', port: null, endPort: null }]);
    expect(p.allowed).toEqual([]);
    expect(p.hosts).toEqual(['h1']);
    // Deleting it gives the same flows back.
    const back = previewPolicy({ ...t, policies: new Map([[deny.id, deny]]) }, deny, null);
    expect(back.allowed.map((f) => `${f.from}>${f.to}`).sort()).toEqual(into);
    expect(back.selected).toEqual({ added: [], removed: ['a'] });
  });

  it('an allow rule for tcp 80 denies everything else, named by protocol and port range', () => {
    const p = previewPolicy(labelled([], LABELS), null, WEB_FROM_DB);
    expect(p.denied.find((f) => f.from === 'd' && f.to === 'a')!.ports).toEqual([
      { protocol: 'tcp', port: 0, endPort: 79 },
      { protocol: 'tcp', port: 81, endPort: 65535 },
      { protocol: 'udp', port: null, endPort: null },
      { protocol: 'icmp', port: null, endPort: null },
      { protocol: 'other', port: null, endPort: null },
    ]);
    expect(p.denied.find((f) => f.from === 'g' && f.to === 'a')!.ports).toEqual([
      { protocol: 'any', port: null, endPort: null },
    ]);
  });

  it('cuts long lists at the limit and says so', () => {
    const p = previewPolicy(
      labelled([], LABELS),
      null,
      policy('deny-web', sel({ app: 'web' }), []),
      {
        limit: 2,
      },
    );
    expect(p.denied).toHaveLength(2);
    expect(p.truncated).toBe(true);
  });
});
