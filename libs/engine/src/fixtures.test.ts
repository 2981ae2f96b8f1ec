/**
 * Test fixtures shared by the engine specs. The `.test.ts` suffix keeps this file out of
 * the production build (tsconfig.build.json) while Jest only runs `*.spec.ts`.
 */
import type {
  Host,
  HostBlock,
  Instance,
  Network,
  NetworkModel,
  Router,
  Topology,
} from '../../model/src/index.js';

export const H1_IP = '192.0.2.11';
export const H2_IP = '192.0.2.12';
export const H3_IP = '192.0.2.13';

export function host(id: string, underlayIp: string, extra: Partial<Host> = {}): Host {
  return { id, name: id, underlayIp, uplink: 'eth0', asn: null, labels: {}, ...extra };
}

export function network(
  id: string,
  model: NetworkModel,
  cidr: string,
  extra: Partial<Network> = {},
): Network {
  const base = cidr.split('/')[0].split('.').map(Number);
  base[3] += 1;
  return {
    id,
    name: id,
    model,
    cidr,
    gateway: base.join('.'),
    mtu: 1500,
    vlanId: null,
    vni: null,
    encapsulation: null,
    routing: null,
    blockPrefixLen: null,
    transport: null,
    ...extra,
  };
}

export function instance(
  id: string,
  networkId: string,
  hostId: string,
  ip: string,
  mac: string,
  labels: Readonly<Record<string, string>> = {},
): Instance {
  return { id, name: `vm-${id}`, networkId, hostId, ip, mac, labels };
}

export function topology(parts: {
  hosts?: Host[];
  networks?: Network[];
  instances?: Instance[];
  blocks?: HostBlock[];
  routers?: Router[];
}): Topology {
  const byId = <T extends { id: string }>(xs: T[] = []) => new Map(xs.map((x) => [x.id, x]));
  return {
    hosts: byId(parts.hosts),
    networks: byId(parts.networks),
    instances: byId(parts.instances),
    blocks: parts.blocks ?? [],
    routers: byId(parts.routers),
  };
}

export const HOSTS = [host('h1', H1_IP), host('h2', H2_IP), host('h3', H3_IP)];

/** Two networks of one model on three hosts; instance ids a–e. */
export function twoNetworks(
  blue: Network,
  red: Network,
  blocks: HostBlock[] = [],
  routers: Router[] = [],
  hosts: Host[] = HOSTS,
): Topology {
  const blockBased = blocks.length > 0;
  return topology({
    hosts,
    networks: [blue, red],
    instances: blockBased
      ? [
          instance('a', blue.id, 'h1', '10.244.0.2', '02:00:00:00:00:0a'),
          instance('b', blue.id, 'h2', '10.244.0.66', '02:00:00:00:00:0b'),
          instance('c', blue.id, 'h2', '10.244.0.67', '02:00:00:00:00:0c'),
          instance('d', red.id, 'h1', '10.245.0.2', '02:00:00:00:00:0d'),
          instance('e', red.id, 'h3', '10.245.0.66', '02:00:00:00:00:0e'),
        ]
      : [
          instance('a', blue.id, 'h1', '10.10.0.2', '02:00:00:00:00:0a'),
          instance('b', blue.id, 'h2', '10.10.0.3', '02:00:00:00:00:0b'),
          instance('c', blue.id, 'h2', '10.10.0.4', '02:00:00:00:00:0c'),
          instance('d', red.id, 'h1', '10.10.0.2', '02:00:00:00:00:0d'),
          instance('e', red.id, 'h3', '10.10.0.3', '02:00:00:00:00:0e'),
        ],
    blocks,
    routers,
  });
}

/** Blocks for block-based `blue` (10.244.0.0/16) and `red` (10.245.0.0/16), /26 each. */
export const BLOCKS: HostBlock[] = [
  { networkId: 'blue', hostId: 'h1', cidr: '10.244.0.0/26' },
  { networkId: 'blue', hostId: 'h2', cidr: '10.244.0.64/26' },
  { networkId: 'red', hostId: 'h1', cidr: '10.245.0.0/26' },
  { networkId: 'red', hostId: 'h3', cidr: '10.245.0.64/26' },
];

export const GOLDEN: Record<string, Topology> = {
  bridge: twoNetworks(
    network('blue', 'bridge', '10.10.0.0/24'),
    network('red', 'bridge', '10.10.0.0/24'),
  ),
  vlan: twoNetworks(
    network('blue', 'vlan', '10.10.0.0/24', { vlanId: 100 }),
    network('red', 'vlan', '10.10.0.0/24', { vlanId: 200 }),
  ),
  routedStatic: twoNetworks(
    network('blue', 'routed', '10.244.0.0/16', { routing: 'static', blockPrefixLen: 26 }),
    network('red', 'routed', '10.245.0.0/16', { routing: 'static', blockPrefixLen: 26 }),
    BLOCKS,
  ),
  routedBgp: twoNetworks(
    network('blue', 'routed', '10.244.0.0/16', { routing: 'bgp', blockPrefixLen: 26 }),
    network('red', 'routed', '10.245.0.0/16', { routing: 'bgp', blockPrefixLen: 26 }),
    BLOCKS,
    [],
    [
      host('h1', H1_IP, { asn: 64600 }),
      host('h2', H2_IP),
      host('h3', H3_IP, { labels: { 'lattice.io/route-reflector': 'true' } }),
    ],
  ),
  overlayVxlan: twoNetworks(
    network('blue', 'overlay', '10.10.0.0/24', { encapsulation: 'vxlan', vni: 10001 }),
    network('red', 'overlay', '10.10.0.0/24', { encapsulation: 'vxlan', vni: 10002 }),
  ),
  overlayIpipGre: twoNetworks(
    network('blue', 'overlay', '10.244.0.0/16', { encapsulation: 'ipip', blockPrefixLen: 26 }),
    network('red', 'overlay', '10.245.0.0/16', { encapsulation: 'gre', blockPrefixLen: 26 }),
    BLOCKS,
  ),
  fabric: twoNetworks(
    network('blue', 'fabric', '10.10.0.0/24', { transport: 'vxlan', vni: 10001 }),
    network('red', 'fabric', '10.10.0.0/24', { transport: 'vlan', vlanId: 300 }),
  ),
  router: topology({
    hosts: HOSTS,
    networks: [
      network('blue', 'overlay', '10.10.0.0/24', { encapsulation: 'vxlan', vni: 10001 }),
      network('red', 'routed', '10.245.0.0/16', { routing: 'static', blockPrefixLen: 26 }),
      network('green', 'bridge', '10.30.0.0/24'),
      network('grey', 'overlay', '10.10.0.0/24', { encapsulation: 'vxlan', vni: 10009 }),
    ],
    instances: [
      instance('a', 'blue', 'h1', '10.10.0.2', '02:00:00:00:00:0a'),
      instance('b', 'blue', 'h2', '10.10.0.3', '02:00:00:00:00:0b'),
      instance('d', 'red', 'h1', '10.245.0.2', '02:00:00:00:00:0d'),
      instance('e', 'red', 'h3', '10.245.0.66', '02:00:00:00:00:0e'),
      instance('g', 'green', 'h3', '10.30.0.2', '02:00:00:00:00:01'),
      instance('x', 'grey', 'h1', '10.10.0.3', '02:00:00:00:00:09'),
    ],
    blocks: BLOCKS.filter((b) => b.networkId === 'red'),
    routers: [{ id: 'r1', name: 'r1', networkIds: ['blue', 'red', 'green'] }],
  }),
};
