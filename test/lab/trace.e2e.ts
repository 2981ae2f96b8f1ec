import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  create,
  describeLab,
  eventually,
  expectReachable,
  expectUnreachable,
  ping,
  startLab,
  stopLab,
  type Lab,
} from './lab-support.js';

/**
 * The trace's truth: one lab of three hosts with a network of every model this kernel
 * carries (no ipip/gre here, see models.e2e.ts), a router, isolated networks side by side;
 * for each pair, `GET /trace` says `delivered` exactly when a real ping gets through.
 */
let lab: Lab | undefined;
const L = () => lab!;

const inst = (name: string, network: string, host: string, ip?: string) =>
  create(L(), '/instances', { name, network, host, ...(ip ? { ip } : {}) }) as Promise<{
    name: string;
    ip: string;
  }>;

describeLab('real packets: trace verdicts match pings', () => {
  const ips = new Map<string, string>();

  beforeAll(async () => {
    lab = await startLab(3);
    const net = (name: string, body: Record<string, unknown>) =>
      create(L(), '/networks', { name, ...body });
    await net('isl', { model: 'bridge', cidr: '10.1.0.0/24' });
    await net('vl', { model: 'vlan', cidr: '10.2.0.0/24' });
    await net('vl2', { model: 'vlan', cidr: '10.2.0.0/24' });
    await net('hg', { model: 'routed', routing: 'static', cidr: '10.3.0.0/16' });
    await net('bgp', { model: 'routed', routing: 'bgp', cidr: '10.4.0.0/16' });
    await net('ov', { model: 'overlay', cidr: '10.5.0.0/24' });
    await net('fab', { model: 'fabric', cidr: '10.6.0.0/24' });
    await create(L(), '/routers', { name: 'r1', networks: ['ov', 'hg'] });
    for (const [name, network, host, ip] of [
      ['isl1', 'isl', 'h1'],
      ['isl2', 'isl', 'h1'],
      ['isl3', 'isl', 'h2'],
      ['vl1', 'vl', 'h1'],
      ['vl2', 'vl', 'h2'],
      ['vlb3', 'vl2', 'h3', '10.2.0.100'],
      ['hg1', 'hg', 'h1'],
      ['hg2', 'hg', 'h2'],
      ['bgp1', 'bgp', 'h1'],
      ['bgp3', 'bgp', 'h3'],
      ['ov1', 'ov', 'h1'],
      ['ov3', 'ov', 'h3'],
      ['fab2', 'fab', 'h2'],
      ['fab3', 'fab', 'h3'],
    ] as const) {
      ips.set(name, (await inst(name, network, host, ip)).ip);
    }
    // BGP sessions take a moment: wait for the routes before comparing anything.
    await eventually('bgp1 reaches bgp3', () => ping(L(), 'bgp1', ips.get('bgp3')!), 30_000, 200);
  }, 120_000);

  afterAll(async () => {
    await stopLab(lab);
  }, 60_000);

  /** [from, to, expected verdict]: the expectation keeps the comparison from being vacuous. */
  const CASES: [string, string, 'delivered' | 'dropped'][] = [
    ['isl1', 'isl2', 'delivered'], // bridge, one host
    ['isl1', 'isl3', 'dropped'], // bridge, across hosts: islands
    ['vl1', 'vl2', 'delivered'], // vlan across hosts
    ['vl1', 'vlb3', 'dropped'], // another VLAN, same subnet
    ['hg1', 'hg2', 'delivered'], // routed static
    ['bgp3', 'bgp1', 'delivered'], // routed bgp
    ['ov1', 'ov3', 'delivered'], // overlay vxlan
    ['fab2', 'fab3', 'delivered'], // fabric
    ['ov3', 'hg2', 'delivered'], // across the router, across hosts
    ['hg1', 'ov1', 'delivered'], // across the router, one host
    ['hg1', 'bgp1', 'dropped'], // isolated routed networks, one host: the filter
    ['ov1', 'isl1', 'dropped'], // isolated, one host
    ['fab2', 'hg2', 'dropped'], // isolated, one host
    ['bgp1', 'ov3', 'dropped'], // isolated, across hosts
  ];

  it.each(CASES)(
    '%s → %s: the trace says %s, and so does ping',
    async (from, to, want) => {
      const res = await L().t.get(`/trace?from=${from}&to=${to}`).expect(200);
      const { verdict, reason } = res.body as { verdict: string; reason?: string };
      expect([from, to, verdict, reason]).toEqual([
        from,
        to,
        want,
        want === 'dropped' ? expect.any(String) : undefined,
      ]);
      if (verdict === 'delivered') await expectReachable(L(), from, ips.get(to)!);
      else await expectUnreachable(L(), from, ips.get(to)!);
    },
    30_000,
  );

  it('an address outside every network: dropped, and ping gets nothing', async () => {
    const res = await L().t.get('/trace?from=hg1&to=198.51.100.9').expect(200);
    expect(res.body.verdict).toBe('dropped');
    await expectUnreachable(L(), 'hg1', '198.51.100.9');
  });
});
