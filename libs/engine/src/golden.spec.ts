/**
 * Golden tests: for each model, a small topology (3 hosts, 2 networks, a few instances; see
 * fixtures.test.ts) and the exact resources every host must get, in apply order.
 */
import { describe, expect, it } from '@jest/globals';
import type { FloatingIp, Network, Topology } from '../../model/src/index.js';
import {
  bridgeName,
  computeAll,
  DesiredStateEngine,
  inApplyOrder,
  networkGatewayMac,
  resource,
  routerMac,
  vethName,
} from './index.js';
import type { DesiredState, Resource } from './index.js';
import { GOLDEN, H1_IP, H2_IP, H3_IP, host, network, topology } from './fixtures.test.js';

const BR = {
  blue: bridgeName('blue'),
  red: bridgeName('red'),
  green: bridgeName('green'),
  grey: bridgeName('grey'),
};
type Net = keyof typeof BR;
/** The distributed router's gateway MAC, the same on every host. */
const RMAC = routerMac('r1');
/** Pinned bridge MACs of block-based networks without a router. */
const NMAC = { blue: networkGatewayMac('blue'), red: networkGatewayMac('red') };
interface Inst {
  id: string;
  network: Net;
  mac: string;
}
const A: Inst = { id: 'a', network: 'blue', mac: '02:00:00:00:00:0a' };
const B: Inst = { id: 'b', network: 'blue', mac: '02:00:00:00:00:0b' };
const C: Inst = { id: 'c', network: 'blue', mac: '02:00:00:00:00:0c' };
const D: Inst = { id: 'd', network: 'red', mac: '02:00:00:00:00:0d' };
const E: Inst = { id: 'e', network: 'red', mac: '02:00:00:00:00:0e' };
const G: Inst = { id: 'g', network: 'green', mac: '02:00:00:00:00:01' };
const X: Inst = { id: 'x', network: 'grey', mac: '02:00:00:00:00:09' };

const FABRIC = true;
const off = { learning: false, flood: false, mcastFlood: false };
const FABRIC_INSTANCE_PORT = { ...off, bcastFlood: false, neighSuppress: false };
const FABRIC_VXLAN_PORT = { ...off, bcastFlood: true, neighSuppress: false };
const FABRIC_UPLINK_PORT = { ...off, bcastFlood: true, neighSuppress: true };

const veth = (id: string) => vethName(id);
const bridge = (net: Net, mtu: number, mac: string | null = null) =>
  resource('bridge', { name: BR[net], network: net, mtu, mac });
const vxlan = (
  vni: number,
  local: string,
  master: string,
  mtu: number,
  fabric = false,
  dev = 'eth0',
) =>
  resource('vxlan', {
    name: `ltvx${vni}`,
    vni,
    local,
    dstport: 4789,
    dev,
    learning: false,
    proxy: fabric,
    master,
    mtu,
    flags: fabric ? FABRIC_VXLAN_PORT : null,
  });
const uplink = (name: string, vlanId: number, master: string, fabric = false) =>
  resource('uplink', {
    name,
    parent: 'eth0',
    vlanId,
    master,
    flags: fabric ? FABRIC_UPLINK_PORT : null,
  });
const tunnel = (mode: 'ipip' | 'gre', local: string) =>
  resource('tunnel', { name: `lt${mode}`, mode, local, dev: 'eth0' });
const port = (i: Inst, address: string, gateway: string | null, mtu: number, fabric = false) =>
  resource('port', {
    instance: i.id,
    name: `vm-${i.id}`,
    network: i.network,
    bridge: BR[i.network],
    veth: vethName(i.id),
    mac: i.mac,
    address,
    gateway,
    mtu,
    flags: fabric ? FABRIC_INSTANCE_PORT : null,
  });
const address = (dev: string, addr: string) => resource('address', { dev, address: addr });
const flood = (dev: string, dst: string) =>
  resource('fdb', { dev, mac: '00:00:00:00:00:00', dst, master: false });
const fdb = (dev: string, mac: string, dst: string | null, master = false) =>
  resource('fdb', { dev, mac, dst, master });
const neigh = (dev: string, ip: string, lladdr: string) => resource('neigh', { dev, ip, lladdr });
const route = (dst: string, via: string, dev: string | null = null) =>
  resource('route', { dst, via, dev, onlink: dev !== null });
const filter = (net: Net, accept: string[], snat: string | null = null) =>
  resource('filter', { network: net, bridge: BR[net], accept, snat });
const bgp = (
  routerId: string,
  asn: number,
  announce: string[],
  interfaces: string[],
  peers: [string, number, boolean?][],
  routeReflector = false,
) =>
  resource('bgp', {
    asn,
    routerId,
    routeReflector,
    announce,
    interfaces,
    peers: peers.map(([address, asn, rr]) => ({ address, asn, rrClient: rr ?? false })),
  });
const IP_FORWARD = resource('sysctl', { name: 'net.ipv4.ip_forward', value: '1' });
const RP_FILTER_LOOSE = resource('sysctl', { name: 'net.ipv4.conf.all.rp_filter', value: '2' });

function expectGolden(name: string, expected: Record<string, Resource[]>): void {
  expectStates(computeAll(GOLDEN[name]), expected);
}

/** Every host's state, in apply order, equals `expected` (host id → resources). */
function expectStates(
  actual: ReadonlyMap<string, DesiredState>,
  expected: Record<string, Resource[]>,
): void {
  expect(Object.fromEntries([...actual].map(([h, s]) => [h, inApplyOrder(s)]))).toEqual(expected);
}

describe('golden desired state per model', () => {
  it('derives gateway MACs that are locally administered unicast', () => {
    for (const mac of [RMAC, NMAC.blue, NMAC.red]) {
      expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      const first = parseInt(mac.slice(0, 2), 16);
      expect(first & 1).toBe(0); // unicast
      expect(first & 2).toBe(2); // locally administered
    }
  });

  it('bridge: per-host bridges with local instances only, nothing toward other hosts', () => {
    expectGolden('bridge', {
      h1: [
        bridge('red', 1500),
        bridge('blue', 1500),
        port(D, '10.10.0.2/24', null, 1500),
        port(A, '10.10.0.2/24', null, 1500),
        filter('red', []),
        filter('blue', []),
      ],
      h2: [
        bridge('blue', 1500),
        port(C, '10.10.0.4/24', null, 1500),
        port(B, '10.10.0.3/24', null, 1500),
        filter('blue', []),
      ],
      h3: [bridge('red', 1500), port(E, '10.10.0.3/24', null, 1500), filter('red', [])],
    });
  });

  it('vlan: per-VLAN bridge with <uplink>.<vid> on hosts with instances; the same subnet in two VLANs', () => {
    expectGolden('vlan', {
      h1: [
        bridge('red', 1500),
        bridge('blue', 1500),
        uplink('eth0.100', 100, BR.blue),
        uplink('eth0.200', 200, BR.red),
        port(D, '10.10.0.2/24', null, 1500),
        port(A, '10.10.0.2/24', null, 1500),
        filter('red', []),
        filter('blue', []),
      ],
      h2: [
        bridge('blue', 1500),
        uplink('eth0.100', 100, BR.blue),
        port(C, '10.10.0.4/24', null, 1500),
        port(B, '10.10.0.3/24', null, 1500),
        filter('blue', []),
      ],
      h3: [
        bridge('red', 1500),
        uplink('eth0.200', 200, BR.red),
        port(E, '10.10.0.3/24', null, 1500),
        filter('red', []),
      ],
    });
  });

  it('routed static: block gateways, routes to blocks of other instance hosts, ip_forward', () => {
    expectGolden('routedStatic', {
      h1: [
        bridge('red', 1500, NMAC.red),
        bridge('blue', 1500, NMAC.blue),
        IP_FORWARD,
        address(BR.red, '10.245.0.1/26'),
        address(BR.blue, '10.244.0.1/26'),
        port(D, '10.245.0.2/26', '10.245.0.1', 1500),
        port(A, '10.244.0.2/26', '10.244.0.1', 1500),
        route('10.244.0.64/26', H2_IP),
        route('10.245.0.64/26', H3_IP),
        filter('red', ['10.245.0.0/16']),
        filter('blue', ['10.244.0.0/16']),
      ],
      h2: [
        bridge('blue', 1500, NMAC.blue),
        IP_FORWARD,
        address(BR.blue, '10.244.0.65/26'),
        port(C, '10.244.0.67/26', '10.244.0.65', 1500),
        port(B, '10.244.0.66/26', '10.244.0.65', 1500),
        route('10.244.0.0/26', H1_IP),
        filter('blue', ['10.244.0.0/16']),
      ],
      h3: [
        bridge('red', 1500, NMAC.red),
        IP_FORWARD,
        address(BR.red, '10.245.0.65/26'),
        port(E, '10.245.0.66/26', '10.245.0.65', 1500),
        route('10.245.0.0/26', H1_IP),
        filter('red', ['10.245.0.0/16']),
      ],
    });
  });

  it('routed bgp: one speaker per host, route reflector (h3) with rr clients, host ASN or default', () => {
    expectGolden('routedBgp', {
      h1: [
        bridge('red', 1500, NMAC.red),
        bridge('blue', 1500, NMAC.blue),
        IP_FORWARD,
        address(BR.red, '10.245.0.1/26'),
        address(BR.blue, '10.244.0.1/26'),
        port(D, '10.245.0.2/26', '10.245.0.1', 1500),
        port(A, '10.244.0.2/26', '10.244.0.1', 1500),
        bgp(H1_IP, 64600, ['10.244.0.0/26', '10.245.0.0/26'], [BR.red, BR.blue], [[H3_IP, 64512]]),
        filter('red', ['10.245.0.0/16']),
        filter('blue', ['10.244.0.0/16']),
      ],
      h2: [
        bridge('blue', 1500, NMAC.blue),
        IP_FORWARD,
        address(BR.blue, '10.244.0.65/26'),
        port(C, '10.244.0.67/26', '10.244.0.65', 1500),
        port(B, '10.244.0.66/26', '10.244.0.65', 1500),
        bgp(H2_IP, 64512, ['10.244.0.64/26'], [BR.blue], [[H3_IP, 64512]]),
        filter('blue', ['10.244.0.0/16']),
      ],
      h3: [
        bridge('red', 1500, NMAC.red),
        IP_FORWARD,
        address(BR.red, '10.245.0.65/26'),
        port(E, '10.245.0.66/26', '10.245.0.65', 1500),
        bgp(
          H3_IP,
          64512,
          ['10.245.0.64/26'],
          [BR.red],
          [
            [H1_IP, 64600, true],
            [H2_IP, 64512, true],
          ],
          true,
        ),
        filter('red', ['10.245.0.0/16']),
      ],
    });
  });

  it('overlay vxlan: flood list only toward instance hosts, FDB + neighbour per remote instance, MTU − 50; shared subnet', () => {
    expectGolden('overlayVxlan', {
      h1: [
        bridge('red', 1450),
        bridge('blue', 1450),
        vxlan(10001, H1_IP, BR.blue, 1450),
        vxlan(10002, H1_IP, BR.red, 1450),
        port(D, '10.10.0.2/24', null, 1450),
        port(A, '10.10.0.2/24', null, 1450),
        flood('ltvx10001', H2_IP),
        fdb('ltvx10001', '02:00:00:00:00:0b', H2_IP),
        fdb('ltvx10001', '02:00:00:00:00:0c', H2_IP),
        flood('ltvx10002', H3_IP),
        fdb('ltvx10002', '02:00:00:00:00:0e', H3_IP),
        neigh(BR.red, '10.10.0.3', '02:00:00:00:00:0e'),
        neigh(BR.blue, '10.10.0.3', '02:00:00:00:00:0b'),
        neigh(BR.blue, '10.10.0.4', '02:00:00:00:00:0c'),
        filter('red', []),
        filter('blue', []),
      ],
      h2: [
        bridge('blue', 1450),
        vxlan(10001, H2_IP, BR.blue, 1450),
        port(C, '10.10.0.4/24', null, 1450),
        port(B, '10.10.0.3/24', null, 1450),
        flood('ltvx10001', H1_IP),
        fdb('ltvx10001', '02:00:00:00:00:0a', H1_IP),
        neigh(BR.blue, '10.10.0.2', '02:00:00:00:00:0a'),
        filter('blue', []),
      ],
      h3: [
        bridge('red', 1450),
        vxlan(10002, H3_IP, BR.red, 1450),
        port(E, '10.10.0.3/24', null, 1450),
        flood('ltvx10002', H1_IP),
        fdb('ltvx10002', '02:00:00:00:00:0d', H1_IP),
        neigh(BR.red, '10.10.0.2', '02:00:00:00:00:0d'),
        filter('red', []),
      ],
    });
  });

  it('overlay ipip/gre: shared NBMA tunnel per mode, onlink routes via remote underlay, MTU − 20 / − 24', () => {
    expectGolden('overlayIpipGre', {
      h1: [
        bridge('red', 1476, NMAC.red),
        bridge('blue', 1480, NMAC.blue),
        IP_FORWARD,
        tunnel('gre', H1_IP),
        tunnel('ipip', H1_IP),
        address(BR.red, '10.245.0.1/26'),
        address(BR.blue, '10.244.0.1/26'),
        port(D, '10.245.0.2/26', '10.245.0.1', 1476),
        port(A, '10.244.0.2/26', '10.244.0.1', 1480),
        neigh('ltgre', H3_IP, H3_IP),
        route('10.244.0.64/26', H2_IP, 'ltipip'),
        route('10.245.0.64/26', H3_IP, 'ltgre'),
        filter('red', ['10.245.0.0/16']),
        filter('blue', ['10.244.0.0/16']),
      ],
      h2: [
        bridge('blue', 1480, NMAC.blue),
        IP_FORWARD,
        tunnel('ipip', H2_IP),
        address(BR.blue, '10.244.0.65/26'),
        port(C, '10.244.0.67/26', '10.244.0.65', 1480),
        port(B, '10.244.0.66/26', '10.244.0.65', 1480),
        route('10.244.0.0/26', H1_IP, 'ltipip'),
        filter('blue', ['10.244.0.0/16']),
      ],
      h3: [
        bridge('red', 1476, NMAC.red),
        IP_FORWARD,
        tunnel('gre', H3_IP),
        address(BR.red, '10.245.0.65/26'),
        port(E, '10.245.0.66/26', '10.245.0.65', 1476),
        neigh('ltgre', H1_IP, H1_IP),
        route('10.245.0.0/26', H1_IP, 'ltgre'),
        filter('red', ['10.245.0.0/16']),
      ],
    });
  });

  it('fabric: static FDB + neighbour for every instance, no flood list, flags off, proxy (vxlan) / neigh_suppress (vlan)', () => {
    expectGolden('fabric', {
      h1: [
        bridge('red', 1500),
        bridge('blue', 1450),
        uplink('eth0.300', 300, BR.red, FABRIC),
        vxlan(10001, H1_IP, BR.blue, 1450, FABRIC),
        port(D, '10.10.0.2/24', null, 1500, FABRIC),
        port(A, '10.10.0.2/24', null, 1450, FABRIC),
        fdb('eth0.300', '02:00:00:00:00:0e', null, true),
        fdb(veth('d'), '02:00:00:00:00:0d', null, true),
        fdb(veth('a'), '02:00:00:00:00:0a', null, true),
        fdb('ltvx10001', '02:00:00:00:00:0b', H2_IP, true),
        fdb('ltvx10001', '02:00:00:00:00:0c', H2_IP, true),
        neigh(BR.red, '10.10.0.2', '02:00:00:00:00:0d'),
        neigh(BR.red, '10.10.0.3', '02:00:00:00:00:0e'),
        neigh('ltvx10001', '10.10.0.2', '02:00:00:00:00:0a'),
        neigh('ltvx10001', '10.10.0.3', '02:00:00:00:00:0b'),
        neigh('ltvx10001', '10.10.0.4', '02:00:00:00:00:0c'),
        filter('red', []),
        filter('blue', []),
      ],
      h2: [
        bridge('blue', 1450),
        vxlan(10001, H2_IP, BR.blue, 1450, FABRIC),
        port(C, '10.10.0.4/24', null, 1450, FABRIC),
        port(B, '10.10.0.3/24', null, 1450, FABRIC),
        fdb(veth('c'), '02:00:00:00:00:0c', null, true),
        fdb(veth('b'), '02:00:00:00:00:0b', null, true),
        fdb('ltvx10001', '02:00:00:00:00:0a', H1_IP, true),
        neigh('ltvx10001', '10.10.0.2', '02:00:00:00:00:0a'),
        neigh('ltvx10001', '10.10.0.3', '02:00:00:00:00:0b'),
        neigh('ltvx10001', '10.10.0.4', '02:00:00:00:00:0c'),
        filter('blue', []),
      ],
      h3: [
        bridge('red', 1500),
        uplink('eth0.300', 300, BR.red, FABRIC),
        port(E, '10.10.0.3/24', null, 1500, FABRIC),
        fdb('eth0.300', '02:00:00:00:00:0d', null, true),
        fdb(veth('e'), '02:00:00:00:00:0e', null, true),
        neigh(BR.red, '10.10.0.2', '02:00:00:00:00:0d'),
        neigh(BR.red, '10.10.0.3', '02:00:00:00:00:0e'),
        filter('red', []),
      ],
    });
  });

  it('router: distributed gateway with one MAC, router presence of the transport of peers, isolation filters; grey stays isolated', () => {
    expectGolden('router', {
      h1: [
        bridge('red', 1500, RMAC),
        bridge('grey', 1450),
        bridge('green', 1500, RMAC),
        bridge('blue', 1450, RMAC),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        vxlan(10001, H1_IP, BR.blue, 1450),
        vxlan(10009, H1_IP, BR.grey, 1450),
        address(BR.red, '10.245.0.1/26'),
        address(BR.green, '10.30.0.1/24'),
        address(BR.blue, '10.10.0.1/24'),
        port(X, '10.10.0.3/24', null, 1450),
        port(D, '10.245.0.2/26', '10.245.0.1', 1500),
        port(A, '10.10.0.2/24', '10.10.0.1', 1450),
        flood('ltvx10001', H2_IP),
        fdb('ltvx10001', '02:00:00:00:00:0b', H2_IP),
        neigh(BR.blue, '10.10.0.3', '02:00:00:00:00:0b'),
        route('10.245.0.64/26', H3_IP),
        filter('red', ['10.10.0.0/24', '10.245.0.0/16', '10.30.0.0/24']),
        filter('grey', []),
        filter('green', ['10.10.0.0/24', '10.245.0.0/16']),
        filter('blue', ['10.245.0.0/16', '10.30.0.0/24']),
      ],
      h2: [
        bridge('green', 1500, RMAC),
        bridge('blue', 1450, RMAC),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        vxlan(10001, H2_IP, BR.blue, 1450),
        address(BR.green, '10.30.0.1/24'),
        address(BR.blue, '10.10.0.1/24'),
        port(B, '10.10.0.3/24', '10.10.0.1', 1450),
        flood('ltvx10001', H1_IP),
        fdb('ltvx10001', '02:00:00:00:00:0a', H1_IP),
        neigh(BR.blue, '10.10.0.2', '02:00:00:00:00:0a'),
        route('10.245.0.0/26', H1_IP),
        route('10.245.0.64/26', H3_IP),
        filter('green', ['10.10.0.0/24', '10.245.0.0/16']),
        filter('blue', ['10.245.0.0/16', '10.30.0.0/24']),
      ],
      h3: [
        bridge('red', 1500, RMAC),
        bridge('green', 1500, RMAC),
        bridge('blue', 1450, RMAC),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        vxlan(10001, H3_IP, BR.blue, 1450),
        address(BR.red, '10.245.0.65/26'),
        address(BR.green, '10.30.0.1/24'),
        address(BR.blue, '10.10.0.1/24'),
        port(E, '10.245.0.66/26', '10.245.0.65', 1500),
        port(G, '10.30.0.2/24', '10.30.0.1', 1500),
        flood('ltvx10001', H1_IP),
        flood('ltvx10001', H2_IP),
        fdb('ltvx10001', '02:00:00:00:00:0a', H1_IP),
        fdb('ltvx10001', '02:00:00:00:00:0b', H2_IP),
        neigh(BR.blue, '10.10.0.2', '02:00:00:00:00:0a'),
        neigh(BR.blue, '10.10.0.3', '02:00:00:00:00:0b'),
        route('10.245.0.0/26', H1_IP),
        filter('red', ['10.10.0.0/24', '10.245.0.0/16', '10.30.0.0/24']),
        filter('green', ['10.10.0.0/24', '10.245.0.0/16']),
        filter('blue', ['10.245.0.0/16', '10.30.0.0/24']),
      ],
    });
  });
});

// ---- egress (natOutgoing) and floating IPs ---------------------------------------------

/**
 * Networks without instances (present on no host) whose CIDRs still belong in every
 * netset: 10.20.5.0/24 lies inside 10.20.0.0/16 and is aggregated away; 172.16.0.0/24
 * sorts after the 10.x networks by address.
 */
const ELSEWHERE: Network[] = [
  network('far', 'bridge', '172.16.0.0/24'),
  network('inner', 'bridge', '10.20.5.0/24'),
  network('wide', 'bridge', '10.20.0.0/16'),
  network('low', 'bridge', '10.0.0.0/24'),
];

/** A golden topology with the ELSEWHERE networks, and `natOutgoing` set on `egress`. */
function withEgress(name: string, egress: Net | null): Topology {
  const t = GOLDEN[name];
  const networks = new Map(t.networks);
  for (const n of ELSEWHERE) networks.set(n.id, n);
  if (egress !== null) networks.set(egress, { ...networks.get(egress)!, natOutgoing: true });
  return { ...t, networks };
}

const netset = (cidrs: string[]) => resource('netset', { name: 'internal', cidrs });
/** The netset of the shared-subnet golden topologies (blue and red reuse 10.10.0.0/24). */
const NETSET_L2 = netset(['10.0.0.0/24', '10.10.0.0/24', '10.20.0.0/16', '172.16.0.0/24']);
const NETSET_BLOCKS = netset([
  '10.0.0.0/24',
  '10.20.0.0/16',
  '10.244.0.0/16',
  '10.245.0.0/16',
  '172.16.0.0/24',
]);
const NETSET_KEY = 'netset:internal';

describe('golden: egress (natOutgoing)', () => {
  it('bridge: the gateway is served (pinned MAC, address, port gateways), snat to the host underlay, netset of every network', () => {
    expectStates(computeAll(withEgress('bridge', 'blue')), {
      h1: [
        bridge('red', 1500),
        bridge('blue', 1500, NMAC.blue),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        address(BR.blue, '10.10.0.1/24'),
        port(D, '10.10.0.2/24', null, 1500),
        port(A, '10.10.0.2/24', '10.10.0.1', 1500),
        filter('red', []),
        filter('blue', [], H1_IP),
        NETSET_L2,
      ],
      h2: [
        bridge('blue', 1500, NMAC.blue),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        address(BR.blue, '10.10.0.1/24'),
        port(C, '10.10.0.4/24', '10.10.0.1', 1500),
        port(B, '10.10.0.3/24', '10.10.0.1', 1500),
        filter('blue', [], H2_IP),
        NETSET_L2,
      ],
      // red has no egress: h3 is exactly as without it.
      h3: [bridge('red', 1500), port(E, '10.10.0.3/24', null, 1500), filter('red', [])],
    });
  });

  it('overlay vxlan: one gateway MAC on every host of the network, each host translating to its own underlay address', () => {
    expectStates(computeAll(withEgress('overlayVxlan', 'blue')), {
      h1: [
        bridge('red', 1450),
        bridge('blue', 1450, NMAC.blue),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        vxlan(10001, H1_IP, BR.blue, 1450),
        vxlan(10002, H1_IP, BR.red, 1450),
        address(BR.blue, '10.10.0.1/24'),
        port(D, '10.10.0.2/24', null, 1450),
        port(A, '10.10.0.2/24', '10.10.0.1', 1450),
        flood('ltvx10001', H2_IP),
        fdb('ltvx10001', '02:00:00:00:00:0b', H2_IP),
        fdb('ltvx10001', '02:00:00:00:00:0c', H2_IP),
        flood('ltvx10002', H3_IP),
        fdb('ltvx10002', '02:00:00:00:00:0e', H3_IP),
        neigh(BR.red, '10.10.0.3', '02:00:00:00:00:0e'),
        neigh(BR.blue, '10.10.0.3', '02:00:00:00:00:0b'),
        neigh(BR.blue, '10.10.0.4', '02:00:00:00:00:0c'),
        filter('red', []),
        filter('blue', [], H1_IP),
        NETSET_L2,
      ],
      h2: [
        bridge('blue', 1450, NMAC.blue),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        vxlan(10001, H2_IP, BR.blue, 1450),
        address(BR.blue, '10.10.0.1/24'),
        port(C, '10.10.0.4/24', '10.10.0.1', 1450),
        port(B, '10.10.0.3/24', '10.10.0.1', 1450),
        flood('ltvx10001', H1_IP),
        fdb('ltvx10001', '02:00:00:00:00:0a', H1_IP),
        neigh(BR.blue, '10.10.0.2', '02:00:00:00:00:0a'),
        filter('blue', [], H2_IP),
        NETSET_L2,
      ],
      h3: [
        bridge('red', 1450),
        vxlan(10002, H3_IP, BR.red, 1450),
        port(E, '10.10.0.3/24', null, 1450),
        flood('ltvx10002', H1_IP),
        fdb('ltvx10002', '02:00:00:00:00:0d', H1_IP),
        neigh(BR.red, '10.10.0.2', '02:00:00:00:00:0d'),
        filter('red', []),
      ],
    });
  });

  it('routed static: the block gateways as before, plus snat, netset and loose rp_filter on the hosts of the network', () => {
    expectStates(computeAll(withEgress('routedStatic', 'red')), {
      h1: [
        bridge('red', 1500, NMAC.red),
        bridge('blue', 1500, NMAC.blue),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        address(BR.red, '10.245.0.1/26'),
        address(BR.blue, '10.244.0.1/26'),
        port(D, '10.245.0.2/26', '10.245.0.1', 1500),
        port(A, '10.244.0.2/26', '10.244.0.1', 1500),
        route('10.244.0.64/26', H2_IP),
        route('10.245.0.64/26', H3_IP),
        filter('red', ['10.245.0.0/16'], H1_IP),
        filter('blue', ['10.244.0.0/16']),
        NETSET_BLOCKS,
      ],
      // blue has no egress.
      h2: [
        bridge('blue', 1500, NMAC.blue),
        IP_FORWARD,
        address(BR.blue, '10.244.0.65/26'),
        port(C, '10.244.0.67/26', '10.244.0.65', 1500),
        port(B, '10.244.0.66/26', '10.244.0.65', 1500),
        route('10.244.0.0/26', H1_IP),
        filter('blue', ['10.244.0.0/16']),
      ],
      h3: [
        bridge('red', 1500, NMAC.red),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        address(BR.red, '10.245.0.65/26'),
        port(E, '10.245.0.66/26', '10.245.0.65', 1500),
        route('10.245.0.0/26', H1_IP),
        filter('red', ['10.245.0.0/16'], H3_IP),
        NETSET_BLOCKS,
      ],
    });
  });

  it('without natOutgoing the same topologies are exactly their golden state: snat null, no netset, no fip', () => {
    for (const name of ['bridge', 'overlayVxlan', 'routedStatic']) {
      const states = computeAll(withEgress(name, null));
      expect(states).toEqual(computeAll(GOLDEN[name]));
      for (const s of states.values()) {
        for (const r of s.values()) {
          expect(r.kind).not.toMatch(/^(netset|fip)$/);
          if (r.kind === 'filter') expect(r.spec.snat).toBeNull();
        }
      }
    }
  });

  it('the incremental engine turns egress on and off to the same states', () => {
    const e = new DesiredStateEngine(withEgress('overlayVxlan', null));
    const blue = GOLDEN.overlayVxlan.networks.get('blue')!;
    const on = e.apply({ type: 'network.upsert', network: { ...blue, natOutgoing: true } });
    expect([...on.hosts.keys()].sort()).toEqual(['h1', 'h2']);
    expect(new Map([...e.hostIds()].map((h) => [h, e.stateOf(h)]))).toEqual(
      computeAll(withEgress('overlayVxlan', 'blue')),
    );
    expect(e.stateOf('h2').get(`filter:${BR.blue}`)).toEqual(filter('blue', [], H2_IP));
    e.apply({ type: 'network.upsert', network: { ...blue, natOutgoing: false } });
    expect(new Map([...e.hostIds()].map((h) => [h, e.stateOf(h)]))).toEqual(
      computeAll(GOLDEN.overlayVxlan),
    );
  });
});

describe('golden: floating IPs', () => {
  const F = '198.51.100.7';
  const FIP_KEY = `fip:${F}`;
  /** h2's uplink is eth1: a floating IP lives on the uplink of its instance's host. */
  const HOSTS_FIP = [host('h1', H1_IP), host('h2', H2_IP, { uplink: 'eth1' }), host('h3', H3_IP)];
  const bound = (instanceId: string | null): FloatingIp => ({
    id: 'f1',
    address: F,
    poolId: 'p1',
    instanceId,
  });
  /** The overlay vxlan golden topology on HOSTS_FIP, with floating IP f1 bound to `to`. */
  function fipTopology(to: string | null, nat: Net | null = null): Topology {
    const t = withEgress('overlayVxlan', nat);
    return {
      ...topology({
        hosts: HOSTS_FIP,
        networks: [...t.networks.values()],
        instances: [...t.instances.values()],
      }),
      floatingIps: new Map([['f1', bound(to)]]),
    };
  }
  const fipA = (dev: string) =>
    resource('fip', {
      address: F,
      instance: 'a',
      name: 'vm-a',
      network: 'blue',
      bridge: BR.blue,
      ip: '10.10.0.2',
      dev,
    });
  const statesOf = (e: DesiredStateEngine) =>
    new Map([...e.hostIds()].map((h) => [h, e.stateOf(h)] as const));
  /** Hosts whose state holds `key`. */
  const holders = (e: DesiredStateEngine, key: string) =>
    [...e.hostIds()].filter((h) => e.stateOf(h).has(key)).sort();

  it('bound: the fip and the netset on the instance host only; the network gateway served on all its hosts', () => {
    expectStates(computeAll(fipTopology('a')), {
      h1: [
        bridge('red', 1450),
        bridge('blue', 1450, NMAC.blue),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        vxlan(10001, H1_IP, BR.blue, 1450),
        vxlan(10002, H1_IP, BR.red, 1450),
        address(BR.blue, '10.10.0.1/24'),
        port(D, '10.10.0.2/24', null, 1450),
        port(A, '10.10.0.2/24', '10.10.0.1', 1450),
        flood('ltvx10001', H2_IP),
        fdb('ltvx10001', '02:00:00:00:00:0b', H2_IP),
        fdb('ltvx10001', '02:00:00:00:00:0c', H2_IP),
        flood('ltvx10002', H3_IP),
        fdb('ltvx10002', '02:00:00:00:00:0e', H3_IP),
        neigh(BR.red, '10.10.0.3', '02:00:00:00:00:0e'),
        neigh(BR.blue, '10.10.0.3', '02:00:00:00:00:0b'),
        neigh(BR.blue, '10.10.0.4', '02:00:00:00:00:0c'),
        filter('red', []),
        filter('blue', []),
        fipA('eth0'),
        NETSET_L2,
      ],
      // An instance of the network, no floating IP of its own: gateway, no fip, no netset.
      h2: [
        bridge('blue', 1450, NMAC.blue),
        RP_FILTER_LOOSE,
        IP_FORWARD,
        vxlan(10001, H2_IP, BR.blue, 1450, false, 'eth1'),
        address(BR.blue, '10.10.0.1/24'),
        port(C, '10.10.0.4/24', '10.10.0.1', 1450),
        port(B, '10.10.0.3/24', '10.10.0.1', 1450),
        flood('ltvx10001', H1_IP),
        fdb('ltvx10001', '02:00:00:00:00:0a', H1_IP),
        neigh(BR.blue, '10.10.0.2', '02:00:00:00:00:0a'),
        filter('blue', []),
      ],
      h3: [
        bridge('red', 1450),
        vxlan(10002, H3_IP, BR.red, 1450),
        port(E, '10.10.0.3/24', null, 1450),
        flood('ltvx10002', H1_IP),
        fdb('ltvx10002', '02:00:00:00:00:0d', H1_IP),
        neigh(BR.red, '10.10.0.2', '02:00:00:00:00:0d'),
        filter('red', []),
      ],
    });
  });

  it('unbound: the topology is exactly as without the floating IP', () => {
    const without: Topology = { ...fipTopology(null), floatingIps: new Map() };
    expect(computeAll(fipTopology(null))).toEqual(computeAll(without));
    expect(holders(new DesiredStateEngine(fipTopology(null)), NETSET_KEY)).toEqual([]);
  });

  it('the engine: the fip follows its instance on move (instance.move, then instance.upsert)', () => {
    const e = new DesiredStateEngine(fipTopology('a'));
    expect(statesOf(e)).toEqual(computeAll(fipTopology('a')));

    const moved = e.apply({ type: 'instance.move', id: 'a', hostId: 'h2' });
    expect(holders(e, FIP_KEY)).toEqual(['h2']);
    expect(e.stateOf('h2').get(FIP_KEY)).toEqual(fipA('eth1'));
    expect(holders(e, NETSET_KEY)).toEqual(['h2']);
    expect(e.stateOf('h2').get(NETSET_KEY)).toEqual(NETSET_L2);
    const h1 = moved.hosts.get('h1')!.diff;
    expect(h1.deletes.map((r) => r.key)).toEqual(expect.arrayContaining([FIP_KEY, NETSET_KEY]));
    const h2 = moved.hosts.get('h2')!.diff;
    expect(h2.upserts.filter((u) => u.kind === 'fip' || u.kind === 'netset')).toEqual([
      { ...fipA('eth1'), op: 'create' },
      { ...NETSET_L2, op: 'create' },
    ]);
    expect(statesOf(e)).toEqual(computeAll(e.topology()));

    const a = e.topology().instances.get('a')!;
    e.apply({ type: 'instance.upsert', instance: { ...a, hostId: 'h1' } });
    expect(holders(e, FIP_KEY)).toEqual(['h1']);
    expect(e.stateOf('h1').get(FIP_KEY)).toEqual(fipA('eth0'));
    expect(holders(e, NETSET_KEY)).toEqual(['h1']);
    expect(statesOf(e)).toEqual(computeAll(fipTopology('a')));
  });

  it('the engine: rebinding to another instance moves the fip to that instance host', () => {
    const e = new DesiredStateEngine(fipTopology('a'));
    e.apply({ type: 'floatingip.upsert', floatingIp: bound('b') });
    expect(holders(e, FIP_KEY)).toEqual(['h2']);
    expect(e.stateOf('h2').get(FIP_KEY)).toEqual(
      resource('fip', {
        address: F,
        instance: 'b',
        name: 'vm-b',
        network: 'blue',
        bridge: BR.blue,
        ip: '10.10.0.3',
        dev: 'eth1',
      }),
    );
    expect(holders(e, NETSET_KEY)).toEqual(['h2']);
    expect(statesOf(e)).toEqual(computeAll(fipTopology('b')));
  });

  it('the engine: unbinding removes the fip, the netset and the gateway it needed', () => {
    const e = new DesiredStateEngine(fipTopology('a'));
    e.apply({ type: 'floatingip.upsert', floatingIp: bound(null) });
    expect(holders(e, FIP_KEY)).toEqual([]);
    expect(holders(e, NETSET_KEY)).toEqual([]);
    // blue is attached to no router and has no egress: its gateway is not served any more.
    expect(e.stateOf('h1').get(`bridge:${BR.blue}`)).toEqual(bridge('blue', 1450));
    expect(e.stateOf('h2').has(`address:${BR.blue}:10.10.0.1/24`)).toBe(false);
    expect(e.topology().floatingIps?.get('f1')).toEqual(bound(null));
    expect(statesOf(e)).toEqual(computeAll(fipTopology(null)));
  });

  it('the engine: the netset stays while another network of the host needs it', () => {
    // red (d on h1, e on h3) has egress; blue's a on h1 has the floating IP.
    const e = new DesiredStateEngine(fipTopology('a', 'red'));
    expect(holders(e, NETSET_KEY)).toEqual(['h1', 'h3']);
    e.apply({ type: 'floatingip.upsert', floatingIp: bound(null) });
    expect(holders(e, FIP_KEY)).toEqual([]);
    expect(holders(e, NETSET_KEY)).toEqual(['h1', 'h3']);
    expect(e.stateOf('h1').get(`filter:${BR.red}`)).toEqual(filter('red', [], H1_IP));
    const red = e.topology().networks.get('red')!;
    e.apply({ type: 'network.upsert', network: { ...red, natOutgoing: false } });
    expect(holders(e, NETSET_KEY)).toEqual([]);
    expect(statesOf(e)).toEqual(computeAll(fipTopology(null)));
  });

  it('the engine: floatingip.delete removes the fip and the netset', () => {
    const e = new DesiredStateEngine(fipTopology('a'));
    const u = e.apply({ type: 'floatingip.delete', id: 'f1' });
    expect(u.hosts.get('h1')!.diff.deletes.map((r) => r.key)).toEqual(
      expect.arrayContaining([FIP_KEY, NETSET_KEY]),
    );
    expect(holders(e, FIP_KEY)).toEqual([]);
    expect(holders(e, NETSET_KEY)).toEqual([]);
    expect(e.topology().floatingIps?.has('f1') ?? false).toBe(false);
    expect(statesOf(e)).toEqual(computeAll(fipTopology(null)));
  });

  it('the engine: deleting the instance unbinds its floating IP (a new instance with its id does not get it back)', () => {
    const e = new DesiredStateEngine(fipTopology('a'));
    const a = e.topology().instances.get('a')!;
    e.apply({ type: 'instance.delete', id: 'a' });
    expect(e.topology().floatingIps?.get('f1')).toEqual(bound(null));
    expect(holders(e, FIP_KEY)).toEqual([]);
    expect(holders(e, NETSET_KEY)).toEqual([]);
    e.apply({ type: 'instance.upsert', instance: a });
    expect(holders(e, FIP_KEY)).toEqual([]);
    expect(statesOf(e)).toEqual(computeAll(fipTopology(null)));
  });
});
