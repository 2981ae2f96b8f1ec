/**
 * Golden tests: for each model, a small topology (3 hosts, 2 networks, a few instances; see
 * fixtures.test.ts) and the exact resources every host must get, in apply order.
 */
import { describe, expect, it } from '@jest/globals';
import {
  bridgeName,
  computeAll,
  inApplyOrder,
  networkGatewayMac,
  resource,
  routerMac,
  vethName,
} from './index.js';
import type { Resource } from './index.js';
import { GOLDEN, H1_IP, H2_IP, H3_IP } from './fixtures.test.js';

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
const vxlan = (vni: number, local: string, master: string, mtu: number, fabric = false) =>
  resource('vxlan', {
    name: `ltvx${vni}`,
    vni,
    local,
    dstport: 4789,
    dev: 'eth0',
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
  const actual = computeAll(GOLDEN[name]);
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
