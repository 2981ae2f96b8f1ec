/**
 * Trace on the engine's real output: every model's golden topology (fixtures.test.ts), the
 * state the engine computes, and traces over it; then states with one entry removed.
 */
import { describe, expect, it } from '@jest/globals';
import type { Topology } from '../../model/src/index.js';
import {
  bridgeName,
  computeAll,
  DesiredStateEngine,
  trace,
  vethName,
  type DesiredState,
  type TraceQuery,
  type TraceResult,
} from './index.js';
import { GOLDEN, H1_IP, H2_IP } from './fixtures.test.js';

/** Traces `from` → `to` (an instance id, or an IPv4 address when it has dots) on `t`. */
function run(
  t: Topology,
  from: string,
  to: string,
  edit?: (states: Map<string, Map<string, unknown>>) => void,
  extra: Partial<TraceQuery> = {},
): TraceResult {
  const states = new Map(
    [...computeAll(t)].map(([h, s]) => [h, new Map(s)] as [string, Map<string, unknown>]),
  );
  edit?.(states);
  const q: TraceQuery = { from, to: to.includes('.') ? { ip: to } : { instance: to }, ...extra };
  return trace(t, (h) => (states.get(h) ?? new Map()) as DesiredState, q);
}

const without =
  (host: string, ...keys: string[]) =>
  (s: Map<string, Map<string, unknown>>) => {
    for (const k of keys) expect(s.get(host)!.delete(k)).toBe(true);
  };

const steps = (r: TraceResult) => r.hops.map((h) => h.step);
const keys = (r: TraceResult) => r.hops.flatMap((h) => h.resources);

function delivered(r: TraceResult): void {
  expect({ verdict: r.verdict, reason: r.reason }).toEqual({
    verdict: 'delivered',
    reason: undefined,
  });
}
function egress(r: TraceResult): void {
  expect({ verdict: r.verdict, reason: r.reason }).toEqual({
    verdict: 'egress',
    reason: undefined,
  });
}
function dropped(r: TraceResult, ...reason: (string | RegExp)[]): void {
  expect(r.verdict).toBe('dropped');
  for (const p of reason) expect(r.reason).toMatch(p);
  expect(r.hops.at(-1)).toEqual({ step: 'drop', detail: r.reason, resources: [] });
}

const BR = { blue: bridgeName('blue'), red: bridgeName('red'), green: bridgeName('green') };

describe('trace: bridge', () => {
  const t = GOLDEN.bridge;
  it('delivers on one host through the bridge', () => {
    const r = run(t, 'b', 'c');
    delivered(r);
    expect(r.hops[0]).toMatchObject({ step: 'source', host: 'h2' });
    expect(r.hops[0].resources).toEqual([`port:${vethName('b')}`, `bridge:${BR.blue}`]);
    expect(keys(r)).toContain(`port:${vethName('c')}`);
    expect(steps(r)).toContain('reply source');
  });
  it('drops across hosts: a per-host island', () => {
    dropped(run(t, 'a', 'b'), /per-host island/, BR.blue);
  });
  it('drops toward an isolated network reusing the subnet', () => {
    dropped(run(t, 'b', 'e'), /isolated/);
  });
  it('drops an address outside every network: no gateway', () => {
    dropped(run(t, 'a', '8.8.8.8'), /no gateway/, /attached to no router/);
  });
});

describe('trace: vlan', () => {
  const t = GOLDEN.vlan;
  it('delivers across hosts over the VLAN uplink', () => {
    const r = run(t, 'a', 'b');
    delivered(r);
    expect(keys(r)).toEqual(expect.arrayContaining(['uplink:eth0.100', `port:${vethName('b')}`]));
    expect(r.hops.filter((h) => h.step === 'uplink').map((h) => h.host)).toEqual(['h1', 'h2']);
  });
  it('drops toward another VLAN with the same subnet', () => {
    const r = run(t, 'a', 'e');
    dropped(r, /leads to vm-b/, /isolated/);
  });
});

describe('trace: routed', () => {
  it('static: delivers across hosts by the route via the remote underlay', () => {
    const r = run(GOLDEN.routedStatic, 'a', 'b');
    delivered(r);
    const route = r.hops.find((h) => h.step === 'route')!;
    expect(route.host).toBe('h1');
    expect(route.resources).toEqual(['sysctl:net.ipv4.ip_forward', 'route:10.244.0.64/26']);
    expect(r.hops.find((h) => h.step === 'underlay')!.detail).toContain(H2_IP);
    expect(keys(r)).toContain(`filter:${BR.blue}`);
  });
  it('static: a missing route names it', () => {
    dropped(
      run(GOLDEN.routedStatic, 'a', 'b', without('h1', 'route:10.244.0.64/26')),
      /no route to 10\.244\.0\.66 on host h1/,
      'route:10.244.0.64/26',
    );
  });
  it('static: isolated networks on one host are dropped by the filter rule', () => {
    const r = run(GOLDEN.routedStatic, 'a', 'd');
    dropped(r, `filter:${BR.blue}`, `iifname "${BR.blue}" drop`, /10\.244\.0\.0\/16/);
  });
  it('static: an address outside every network has no route', () => {
    dropped(run(GOLDEN.routedStatic, 'a', '192.168.7.7'), /no route to 192\.168\.7\.7/);
  });
  it('bgp: delivers on routes learned from the speakers (route reflector)', () => {
    const r = run(GOLDEN.routedBgp, 'a', 'b');
    delivered(r);
    const bgp = r.hops.filter((h) => h.step === 'bgp');
    expect(bgp.map((h) => h.host)).toEqual(['h3', 'h2']);
    expect(bgp.every((h) => h.resources[0] === 'bgp:speaker')).toBe(true);
    expect(r.hops.find((h) => h.step === 'route')!.detail).toMatch(/reflected by h3/);
  });
  it('bgp: without the speaker on the announcing host there is no route', () => {
    dropped(run(GOLDEN.routedBgp, 'a', 'b', without('h2', 'bgp:speaker')), /no route/);
  });
});

describe('trace: overlay', () => {
  const t = GOLDEN.overlayVxlan;
  it('vxlan: delivers across hosts with the FDB entry toward the remote VTEP', () => {
    const r = run(t, 'a', 'b');
    delivered(r);
    expect(keys(r)).toEqual(
      expect.arrayContaining([
        'vxlan:ltvx10001',
        'fdb:ltvx10001:00:00:00:00:00:00:192.0.2.12',
        'fdb:ltvx10001:02:00:00:00:00:0b',
      ]),
    );
    const vx = r.hops.filter((h) => h.step === 'vxlan');
    expect(vx.map((h) => h.host)).toEqual(['h1', 'h2']);
    expect(vx[0].detail).toContain('VTEP 192.0.2.12');
  });
  it('vxlan: without the unicast entry the frame is flooded; without the flood entry it is dropped', () => {
    delivered(run(t, 'a', 'b', without('h1', 'fdb:ltvx10001:02:00:00:00:00:0b')));
    dropped(
      run(t, 'a', 'b', without('h1', 'fdb:ltvx10001:00:00:00:00:00:00:192.0.2.12')),
      'fdb:ltvx10001:00:00:00:00:00:00:192.0.2.12',
    );
  });
  it('vxlan: another VNI reusing the subnet is isolated', () => {
    dropped(run(t, 'a', 'e'), /isolated/);
  });
  it('ipip: delivers through the tunnel to the remote underlay', () => {
    const r = run(GOLDEN.overlayIpipGre, 'a', 'b');
    delivered(r);
    const tun = r.hops.filter((h) => h.step === 'tunnel');
    expect(tun.map((h) => [h.host, h.resources])).toEqual([
      ['h1', ['tunnel:ltipip']],
      ['h2', ['tunnel:ltipip']],
    ]);
  });
  it('gre: uses the NBMA neighbour of the remote underlay', () => {
    const r = run(GOLDEN.overlayIpipGre, 'd', 'e');
    delivered(r);
    expect(keys(r)).toEqual(expect.arrayContaining(['tunnel:ltgre', 'neigh:ltgre:192.0.2.13']));
    dropped(
      run(GOLDEN.overlayIpipGre, 'd', 'e', without('h1', 'neigh:ltgre:192.0.2.13')),
      'neigh:ltgre:192.0.2.13',
    );
  });
});

describe('trace: fabric', () => {
  const t = GOLDEN.fabric;
  it('vxlan transport: ARP from the pushed neighbour, static FDB both ends', () => {
    const r = run(t, 'a', 'b');
    delivered(r);
    expect(keys(r)).toEqual(
      expect.arrayContaining([
        'neigh:ltvx10001:10.10.0.3',
        'fdb:ltvx10001:02:00:00:00:00:0b',
        `fdb:${vethName('b')}:02:00:00:00:00:0b`,
      ]),
    );
  });
  it('a missing FDB entry makes exactly that instance unreachable (no flooding)', () => {
    dropped(
      run(t, 'a', 'b', without('h1', 'fdb:ltvx10001:02:00:00:00:00:0b')),
      'fdb:ltvx10001:02:00:00:00:00:0b',
      /flooding is off/,
    );
    delivered(run(t, 'a', 'c', without('h1', 'fdb:ltvx10001:02:00:00:00:00:0b')));
  });
  it('a missing neighbour entry: ARP is not answered', () => {
    dropped(
      run(t, 'a', 'b', without('h1', 'neigh:ltvx10001:10.10.0.3')),
      'neigh:ltvx10001:10.10.0.3',
    );
  });
  it('vlan transport: over the uplink with its static entry', () => {
    const r = run(t, 'd', 'e');
    delivered(r);
    expect(keys(r)).toEqual(
      expect.arrayContaining(['uplink:eth0.300', 'fdb:eth0.300:02:00:00:00:00:0e']),
    );
  });
  it('same host: the local static entry', () => {
    delivered(run(t, 'b', 'c'));
    dropped(
      run(t, 'b', 'c', without('h2', `fdb:${vethName('c')}:02:00:00:00:00:0c`)),
      `fdb:${vethName('c')}:02:00:00:00:00:0c`,
    );
  });
});

describe('trace: router', () => {
  const t = GOLDEN.router;
  it('routes vxlan → routed across hosts via the distributed gateway, and back', () => {
    const r = run(t, 'a', 'e', undefined, { proto: 'tcp', port: 443 });
    delivered(r);
    expect(r).toMatchObject({ from: 'vm-a', to: 'vm-e', proto: 'tcp', port: 443 });
    const gw = r.hops.find((h) => h.step === 'gateway')!;
    expect(gw.detail).toMatch(/router r1 \(distributed gateway 10\.10\.0\.1/);
    expect(gw.resources).toEqual([`address:${BR.blue}:10.10.0.1/24`]);
    expect(r.hops.find((h) => h.step === 'filter')!.detail).toMatch(/accept/);
    // The reply is routed on h3 into blue: the gateway's neighbour entry and the VXLAN FDB.
    expect(keys(r)).toEqual(
      expect.arrayContaining([`neigh:${BR.blue}:10.10.0.2`, 'fdb:ltvx10001:02:00:00:00:00:0a']),
    );
  });
  it('a routed neighbour entry missing on the sending host is named', () => {
    dropped(
      run(t, 'e', 'b', without('h3', `neigh:${BR.blue}:10.10.0.3`)),
      `neigh:${BR.blue}:10.10.0.3`,
    );
  });
  it('a bridge-model network is reachable through the router only on its own host', () => {
    delivered(run(t, 'g', 'e'));
    dropped(run(t, 'a', 'g'), /per-host island/);
  });
  it('a network outside the router stays isolated, even with the same subnet', () => {
    dropped(run(t, 'a', 'x'), /isolated/);
    dropped(run(t, 'x', 'e'), /no gateway/);
  });
  it('an address outside every network has no route', () => {
    dropped(run(t, 'a', '172.16.0.1'), /no route to 172\.16\.0\.1 on host h1/);
  });
  it('a missing ip_forward sysctl is named', () => {
    dropped(
      run(t, 'a', 'e', without('h1', 'sysctl:net.ipv4.ip_forward')),
      'sysctl:net.ipv4.ip_forward',
    );
  });
});

describe('trace: the incremental engine and the policy hook', () => {
  it('gives the same answer on the engine state as on the full compute', () => {
    const e = new DesiredStateEngine(GOLDEN.router);
    const r = trace(e.topology(), (h) => e.stateOf(h), { from: 'a', to: { instance: 'e' } });
    expect(r).toEqual(run(GOLDEN.router, 'a', 'e'));
  });
  it('a policy verdict ends the trace naming its rule', () => {
    const states = computeAll(GOLDEN.router);
    const r = trace(
      GOLDEN.router,
      (h) => states.get(h)!,
      { from: 'a', to: { instance: 'e' }, proto: 'tcp', port: 22 },
      {
        policy: (f) =>
          f.direction === 'ingress' && f.port === 22
            ? { allow: false, rule: 'policy deny-ssh ingress', resources: [] }
            : null,
      },
    );
    dropped(r, /deny-ssh/);
  });
  it('unknown instances are dropped with a reason', () => {
    dropped(run(GOLDEN.router, 'nope', 'e'), /unknown source/);
    dropped(run(GOLDEN.router, 'a', 'nope'), /unknown destination/);
  });
});

// ---- egress and floating IPs -----------------------------------------------------------

const F = '198.51.100.7';
/** `t` with natOutgoing on the networks `nat` and floating IP F bound to `fip` (if any). */
function nat(t: Topology, nets: string[], fip: string | null = null): Topology {
  const networks = new Map(t.networks);
  for (const n of nets) networks.set(n, { ...networks.get(n)!, natOutgoing: true });
  const floatingIps = new Map(
    fip ? [['f1', { id: 'f1', address: F, poolId: 'p1', instanceId: fip }]] : [],
  );
  return { ...t, networks, floatingIps };
}
const hop = (r: TraceResult, step: string) => r.hops.find((h) => h.step === step);

describe('trace: egress (natOutgoing)', () => {
  it('bridge: out of the uplink source-translated to the host underlay address, and the reply back', () => {
    const r = run(nat(GOLDEN.bridge, ['blue']), 'a', '8.8.8.8');
    egress(r);
    expect(steps(r)).toEqual([
      'source',
      'gateway',
      'route',
      'filter',
      'snat',
      'external',
      'reply external',
      'reply conntrack',
      'reply route',
      'reply neighbour',
      'reply bridge',
      'reply deliver',
    ]);
    expect(hop(r, 'filter')).toEqual({
      step: 'filter',
      host: 'h1',
      detail: expect.stringContaining(`iifname "${BR.blue}" ip daddr != @internal accept`),
      resources: [`filter:${BR.blue}`, 'netset:internal'],
    });
    expect(hop(r, 'snat')!.detail).toContain(`snat ip to ${H1_IP}`);
    expect(hop(r, 'external')!.detail).toMatch(/out of eth0 of host h1 from 192\.0\.2\.11/);
    expect(hop(r, 'reply conntrack')!.detail).toContain(`${H1_IP} → 10.10.0.2`);
    expect(r.hops.at(-1)).toMatchObject({ host: 'h1', resources: [`port:${vethName('a')}`] });
  });
  it('each host translates to its own underlay address (overlay vxlan)', () => {
    const r = run(nat(GOLDEN.overlayVxlan, ['blue']), 'b', '8.8.8.8');
    egress(r);
    expect(hop(r, 'snat')).toMatchObject({ host: 'h2' });
    expect(hop(r, 'snat')!.detail).toContain(`snat ip to ${H2_IP}`);
  });
  it('without natOutgoing it stays dropped, the reason saying that nothing lets it out', () => {
    dropped(run(GOLDEN.bridge, 'a', '8.8.8.8'), /no gateway/);
    dropped(
      run(GOLDEN.router, 'a', '172.16.0.1'),
      /no route to 172\.16\.0\.1 on host h1/,
      /outside every Lattice network/,
      /network blue has no egress/,
    );
    dropped(run(nat(GOLDEN.router, ['red']), 'a', '172.16.0.1'), /network blue has no egress/);
  });
  it('router: egress of one network, the routes between networks unchanged', () => {
    const t = nat(GOLDEN.router, ['blue']);
    egress(run(t, 'a', '172.16.0.1'));
    delivered(run(t, 'a', 'e'));
    dropped(run(t, 'a', 'x'), /isolated/);
  });
  it('routed: Lattice destinations are never translated nor let out', () => {
    const t = nat(GOLDEN.routedStatic, ['blue']);
    egress(run(t, 'a', '192.168.7.7'));
    // Another network on the same host: still the isolation filter.
    dropped(run(t, 'a', 'd'), `filter:${BR.blue}`, `iifname "${BR.blue}" drop`);
    // Inside red's CIDR, in no block: in the netset, so no route rather than egress.
    const r = run(t, 'a', '10.245.9.9');
    dropped(r, /no route to 10\.245\.9\.9/);
    expect(steps(r)).not.toContain('snat');
  });
  it('reads the desired state: without the filter snat there is no way out; without the netset the set is empty', () => {
    const t = nat(GOLDEN.bridge, ['blue']);
    const noSnat = (s: Map<string, Map<string, unknown>>) => {
      const h1 = s.get('h1')!;
      const f = h1.get(`filter:${BR.blue}`) as { spec: object };
      h1.set(`filter:${BR.blue}`, { ...f, spec: { ...f.spec, snat: null } });
    };
    dropped(run(t, 'a', '8.8.8.8', noSnat), /no egress/);
    const r = run(t, 'a', '8.8.8.8', without('h1', 'netset:internal'));
    egress(r);
    expect(hop(r, 'filter')!.detail).toMatch(
      /missing netset:internal on host h1: @internal is empty/,
    );
  });
  it('the policy hook sees the packet before the source translation', () => {
    const flows: string[] = [];
    const t = nat(GOLDEN.bridge, ['blue']);
    const states = computeAll(t);
    const r = trace(
      t,
      (h) => states.get(h)!,
      { from: 'a', to: { ip: '8.8.8.8' }, proto: 'tcp', port: 443 },
      {
        policy: (f) => {
          flows.push(`${f.direction} ${f.host} ${f.srcIp} → ${f.dstIp}`);
          return f.direction === 'egress'
            ? { allow: false, rule: 'policy no-internet egress', resources: [] }
            : null;
        },
      },
    );
    dropped(r, /no-internet/);
    expect(flows).toEqual(['egress h1 10.10.0.2 → 8.8.8.8']);
  });
});

describe('trace: floating IPs', () => {
  it('the instance leaves with its floating IP, before its network egress', () => {
    for (const nets of [[], ['blue']]) {
      const r = run(nat(GOLDEN.overlayVxlan, nets, 'a'), 'a', '8.8.8.8');
      egress(r);
      expect(hop(r, 'filter')).toMatchObject({
        host: 'h1',
        resources: [`fip:${F}`, 'netset:internal'],
      });
      expect(hop(r, 'filter')!.detail).toContain(`ip saddr 10.10.0.2 ip daddr != @internal accept`);
      expect(hop(r, 'snat')).toMatchObject({ host: 'h1', resources: [`fip:${F}`] });
      expect(hop(r, 'snat')!.detail).toContain(`snat ip to ${F}`);
      expect(hop(r, 'reply conntrack')!.detail).toContain(`${F} → 10.10.0.2`);
      expect(steps(r).at(-1)).toBe('reply deliver');
    }
  });
  it('another instance of the network has no way out (its gateway is served, but no egress)', () => {
    dropped(run(nat(GOLDEN.overlayVxlan, [], 'a'), 'b', '8.8.8.8'), /no floating IP/);
  });
  it('without the fip resource on its host the instance has no way out', () => {
    dropped(
      run(nat(GOLDEN.overlayVxlan, [], 'a'), 'a', '8.8.8.8', without('h1', `fip:${F}`)),
      /no route to 8\.8\.8\.8/,
    );
  });
  it('toward a floating IP: out by egress, over the underlay, DNAT to its instance, and the reply back through both translations', () => {
    // b (blue, egress) on h2 → F, bound to d (red) on h1.
    const r = run(nat(GOLDEN.routedStatic, ['blue'], 'd'), 'b', F);
    delivered(r);
    expect(r.to).toBe(F);
    expect(r.hops.filter((h) => /snat|dnat|conntrack|underlay/.test(h.step))).toEqual([
      expect.objectContaining({ step: 'snat', host: 'h2' }),
      expect.objectContaining({ step: 'underlay', host: 'h2' }),
      expect.objectContaining({ step: 'dnat', host: 'h1', resources: [`fip:${F}`] }),
      expect.objectContaining({ step: 'reply conntrack', host: 'h1' }),
      expect.objectContaining({ step: 'reply underlay', host: 'h1' }),
      expect.objectContaining({ step: 'reply conntrack', host: 'h2' }),
    ]);
    expect(hop(r, 'underlay')!.detail).toMatch(
      /to 198\.51\.100\.7 \(the floating IP host h1 holds\)/,
    );
    expect(hop(r, 'dnat')!.detail).toContain(`dnat ip to 10.245.0.2`);
    expect(hop(r, 'deliver')).toMatchObject({ host: 'h1', resources: [`port:${vethName('d')}`] });
    // d answers b's translated address: the source back to F, then h2 back to b.
    expect(hop(r, 'reply source')!.host).toBe('h1');
    expect(hop(r, 'reply conntrack')!.detail).toContain(`10.245.0.2 → ${F}`);
    expect(hop(r, 'reply underlay')!.detail).toContain(`to ${H2_IP}`);
    expect(r.hops.filter((h) => h.step === 'reply conntrack')[1].detail).toContain(
      `${H2_IP} → 10.244.0.66`,
    );
    expect(r.hops.at(-1)).toMatchObject({ step: 'reply deliver', host: 'h2' });
  });
  it('the ingress policy of the instance sees the translated source and destination', () => {
    const flows: string[] = [];
    const t = nat(GOLDEN.routedStatic, ['blue'], 'd');
    const states = computeAll(t);
    trace(
      t,
      (h) => states.get(h)!,
      { from: 'b', to: { ip: F } },
      { policy: (f) => (flows.push(`${f.direction} ${f.host} ${f.srcIp} → ${f.dstIp}`), null) },
    );
    expect(flows.slice(0, 2)).toEqual([
      `egress h2 10.244.0.66 → ${F}`,
      `ingress h1 ${H2_IP} → 10.245.0.2`,
    ]);
  });
  it('toward a floating IP from a network without egress on another host: dropped', () => {
    dropped(run(nat(GOLDEN.routedStatic, [], 'd'), 'b', F), /no route to 198\.51\.100\.7/);
  });
  it('toward a floating IP of its own host: DNAT before routing, then the isolation filter as for the instance address', () => {
    // g (green) and e (red, holding F) on h3, both attached to r1: delivered without egress.
    const r = run(nat(GOLDEN.router, [], 'e'), 'g', F);
    delivered(r);
    expect(steps(r).slice(0, 5)).toEqual(['source', 'gateway', 'dnat', 'route', 'filter']);
    expect(hop(r, 'dnat')).toMatchObject({ host: 'h3', resources: [`fip:${F}`] });
    expect(hop(r, 'filter')!.detail).toContain('10.245.0.66 in 10.245.0.0/16');
    expect(steps(r)).not.toContain('snat');
    // a (blue) and d (red, holding F) on h1 share no router: even with egress, dropped.
    dropped(
      run(nat(GOLDEN.routedStatic, ['blue'], 'd'), 'a', F),
      `filter:${BR.blue}`,
      /10\.245\.0\.2 is not in \{ 10\.244\.0\.0\/16 \}/,
    );
  });
  it('on the engine state, the floating IP follows its instance to its new host', () => {
    const e = new DesiredStateEngine(nat(GOLDEN.overlayVxlan, [], 'a'));
    e.apply({ type: 'instance.move', id: 'a', hostId: 'h3' });
    const r = trace(e.topology(), (h) => e.stateOf(h), { from: 'a', to: { ip: '8.8.8.8' } });
    egress(r);
    expect(hop(r, 'snat')).toMatchObject({ host: 'h3', resources: [`fip:${F}`] });
    expect(hop(r, 'external')!.detail).toContain(`of host h3 from ${F}`);
    expect(r.hops.every((h) => h.host === 'h3')).toBe(true);
  });
});
