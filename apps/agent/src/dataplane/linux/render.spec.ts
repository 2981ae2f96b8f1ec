import { describe, expect, it } from '@jest/globals';
import type { UpsertOp } from '../../../../../libs/engine/src/diff.js';
import {
  resource,
  type PolicyRuleSpec,
  type PolicySpec,
  type PortFlags,
  type Resource,
} from '../../../../../libs/engine/src/resources.js';
import { parseBatchErrors } from './commands.js';
import { compareKernel, type KernelSnapshot } from './kernel-state.js';
import {
  renderBirdConfig,
  renderDelete,
  renderNftables,
  renderUpsert,
  type RenderContext,
  type Step,
} from './render.js';

const FABRIC: PortFlags = {
  learning: false,
  flood: false,
  mcastFlood: false,
  bcastFlood: true,
  neighSuppress: false,
};
const DEFAULTS = 'learning on flood on mcast_flood on bcast_flood on neigh_suppress off';

const ctx = (links: string[] = [], namespaces: string[] = []): RenderContext => ({
  instanceNetnsPrefix: 'lab-i',
  links: new Set(links),
  namespaces: new Set(namespaces),
});

/** Steps as `stage[ ns]: line`, the shape a reader checks against DATAPLANE.md. */
const show = (steps: readonly Step[]) =>
  steps.map(
    (s) => `${s.stage}${s.ns ? ` ${s.ns}` : ''}: ${s.line}${s.optional ? ' (optional)' : ''}`,
  );
const up = (r: Resource, op: UpsertOp = 'create', c = ctx()) => show(renderUpsert(r, op, c));
const del = (r: Resource, c = ctx()) => show(renderDelete(r, c));

const bridge = resource('bridge', {
  name: 'ltbr-aa',
  network: 'n',
  mtu: 1450,
  mac: '0e:00:00:00:00:01',
});
const vxlan = resource('vxlan', {
  name: 'ltvx100',
  vni: 100,
  local: '192.0.2.11',
  dstport: 4789,
  dev: 'eth0',
  learning: false,
  proxy: true,
  master: 'ltbr-aa',
  mtu: 1450,
  flags: FABRIC,
});
const port = resource('port', {
  instance: 'i1',
  name: 'web1',
  network: 'n',
  bridge: 'ltbr-aa',
  veth: 'ltv000000000001',
  mac: '02:00:00:00:00:01',
  address: '10.0.0.2/24',
  gateway: '10.0.0.1',
  mtu: 1450,
  flags: null,
});

describe('renderUpsert', () => {
  it('bridge: created when absent, updated in place when present', () => {
    expect(up(bridge)).toEqual([
      'ip: link add ltbr-aa type bridge',
      'ip: link set ltbr-aa address 0e:00:00:00:00:01 mtu 1450 up',
    ]);
    expect(up(bridge, 'update', ctx(['ltbr-aa']))).toEqual([
      'ip: link set ltbr-aa address 0e:00:00:00:00:01 mtu 1450 up',
    ]);
    // Already there although the diff says create (applying a diff twice): no `add`.
    expect(
      up({ ...bridge, spec: { ...bridge.spec, mac: null } }, 'create', ctx(['ltbr-aa'])),
    ).toEqual(['ip: link set ltbr-aa mtu 1450 up']);
  });

  it('uplink: uses an existing <parent>.<vid>, creates an 802.1Q sub-interface otherwise', () => {
    const uplink = resource('uplink', {
      name: 'eth0.100',
      parent: 'eth0',
      vlanId: 100,
      master: 'ltbr-aa',
      flags: { ...FABRIC, neighSuppress: true },
    });
    const tail = [
      'ip: link set eth0.100 master ltbr-aa up',
      'bridge: link set dev eth0.100 learning off flood off mcast_flood off bcast_flood on neigh_suppress on',
    ];
    expect(up(uplink, 'create', ctx(['eth0.100']))).toEqual(tail);
    expect(up(uplink)).toEqual(['ip: link add link eth0 name eth0.100 type vlan id 100', ...tail]);
    // Not ours to delete: a pre-wired uplink is only unplugged.
    expect(del(uplink, ctx(['eth0.100']))).toEqual(['ip: link set eth0.100 nomaster']);
    const owned = resource('uplink', { ...uplink.spec, name: 'lt0a1b2c.100' });
    expect(del(owned, ctx(['lt0a1b2c.100']))).toEqual(['ip: link del lt0a1b2c.100']);
  });

  it('vxlan: nolearning, proxy, master, MTU and port flags; replace re-creates', () => {
    const add =
      'ip: link add ltvx100 type vxlan id 100 local 192.0.2.11 dstport 4789 dev eth0 nolearning proxy';
    const tail = [
      'ip: link set ltvx100 master ltbr-aa mtu 1450 up',
      'bridge: link set dev ltvx100 learning off flood off mcast_flood off bcast_flood on neigh_suppress off',
    ];
    expect(up(vxlan)).toEqual([add, ...tail]);
    expect(up(vxlan, 'update', ctx(['ltvx100']))).toEqual(tail);
    expect(up(vxlan, 'replace', ctx(['ltvx100']))).toEqual(['ip: link del ltvx100', add, ...tail]);
    const overlay = resource('vxlan', { ...vxlan.spec, proxy: false, flags: null });
    expect(up(overlay, 'update', ctx(['ltvx100']))).toEqual([
      'ip: link set ltvx100 master ltbr-aa mtu 1450 up',
      `bridge: link set dev ltvx100 ${DEFAULTS}`,
    ]);
  });

  it('tunnel: ipip and gre NBMA devices (no remote)', () => {
    const ipip = resource('tunnel', {
      name: 'ltipip',
      mode: 'ipip',
      local: '192.0.2.11',
      dev: 'eth0',
    });
    const gre = resource('tunnel', {
      name: 'ltgre',
      mode: 'gre',
      local: '192.0.2.11',
      dev: 'eth0',
    });
    expect(up(ipip)).toEqual([
      'ip: link add ltipip type ipip local 192.0.2.11 dev eth0',
      'ip: link set ltipip up',
    ]);
    expect(up(gre, 'replace', ctx(['ltgre']))).toEqual([
      'ip: link del ltgre',
      'ip: link add ltgre type gre local 192.0.2.11 dev eth0',
      'ip: link set ltgre up',
    ]);
    expect(del(gre, ctx(['ltgre']))).toEqual(['ip: link del ltgre']);
  });

  it('port: instance namespace, veth pair, eth0 inside with MAC, MTU, address, gateway', () => {
    expect(up(port)).toEqual([
      'netns: netns add lab-i-web1',
      'netns: netns exec lab-i-web1 sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1',
      'ip: link add ltv000000000001 mtu 1450 type veth peer name eth0 netns lab-i-web1',
      'ip: link set ltv000000000001 master ltbr-aa mtu 1450 up',
      `bridge: link set dev ltv000000000001 ${DEFAULTS}`,
      'bridge: fdb replace 02:00:00:00:00:01 dev ltv000000000001 master dynamic (optional)',
      'instance lab-i-web1: link set lo up',
      'instance lab-i-web1: link set eth0 address 02:00:00:00:00:01 mtu 1450 up',
      'instance lab-i-web1: addr replace 10.0.0.2/24 dev eth0',
      'instance lab-i-web1: route replace default via 10.0.0.1 dev eth0',
    ]);
    // Update in place: no new namespace or veth; a previous address does not survive.
    const fabric = resource('port', {
      ...port.spec,
      gateway: null,
      flags: { ...FABRIC, bcastFlood: false },
    });
    expect(up(fabric, 'update', ctx(['ltv000000000001'], ['lab-i-web1']))).toEqual([
      'ip: link set ltv000000000001 master ltbr-aa mtu 1450 up',
      'bridge: link set dev ltv000000000001 learning off flood off mcast_flood off bcast_flood off neigh_suppress off',
      'instance lab-i-web1: link set lo up',
      'instance lab-i-web1: link set eth0 address 02:00:00:00:00:01 mtu 1450 up',
      'instance lab-i-web1: addr flush dev eth0 scope global',
      'instance lab-i-web1: addr replace 10.0.0.2/24 dev eth0',
      'instance lab-i-web1: route del default (optional)',
    ]);
    // The namespace survived its veth: a left-over eth0 is removed first.
    expect(up(port, 'create', ctx([], ['lab-i-web1'])).slice(0, 2)).toEqual([
      'netns: netns exec lab-i-web1 ip link del eth0 (optional)',
      'netns: netns exec lab-i-web1 sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1',
    ]);
    expect(del(port, ctx(['ltv000000000001'], ['lab-i-web1']))).toEqual([
      'ip: link del ltv000000000001',
      'netns: netns del lab-i-web1',
    ]);
    expect(del(port)).toEqual([]);
  });

  it('address, route (incl. onlink), neigh', () => {
    expect(up(resource('address', { dev: 'ltbr-aa', address: '10.0.0.1/24' }))).toEqual([
      'ip: addr replace 10.0.0.1/24 dev ltbr-aa',
    ]);
    expect(up(resource('address', { dev: 'ltbr-aa', address: 'fd00::1/64' }))).toEqual([
      'ip: addr replace fd00::1/64 dev ltbr-aa nodad',
    ]);
    expect(
      up(resource('route', { dst: '10.244.2.0/26', via: '192.0.2.12', dev: null, onlink: false })),
    ).toEqual(['ip: route replace 10.244.2.0/26 via 192.0.2.12 proto 76']);
    const onlink = resource('route', {
      dst: '10.244.3.0/26',
      via: '192.0.2.13',
      dev: 'ltipip',
      onlink: true,
    });
    expect(up(onlink)).toEqual([
      'ip: route replace 10.244.3.0/26 via 192.0.2.13 dev ltipip onlink proto 76',
    ]);
    expect(del(onlink)).toEqual(['ip: route del 10.244.3.0/26 proto 76']);
    const neigh = resource('neigh', {
      dev: 'ltvx100',
      ip: '10.0.0.5',
      lladdr: '02:00:00:00:00:05',
    });
    expect(up(neigh)).toEqual([
      'ip: neigh replace 10.0.0.5 lladdr 02:00:00:00:00:05 dev ltvx100 nud permanent',
    ]);
    expect(del(neigh)).toEqual(['ip: neigh del 10.0.0.5 dev ltvx100']);
    expect(del(resource('address', { dev: 'ltbr-aa', address: '10.0.0.1/24' }))).toEqual([
      'ip: addr del 10.0.0.1/24 dev ltbr-aa',
    ]);
  });

  it('fdb: VTEP entry, flood-list append, master static, both', () => {
    const flood = resource('fdb', {
      dev: 'ltvx100',
      mac: '00:00:00:00:00:00',
      dst: '192.0.2.12',
      master: false,
    });
    expect(up(flood)).toEqual(['bridge: fdb append 00:00:00:00:00:00 dev ltvx100 dst 192.0.2.12']);
    expect(del(flood)).toEqual([
      'bridge: fdb del 00:00:00:00:00:00 dev ltvx100 dst 192.0.2.12 self',
    ]);
    const vtep = resource('fdb', {
      dev: 'ltvx100',
      mac: '02:00:00:00:00:05',
      dst: '192.0.2.12',
      master: false,
    });
    expect(up(vtep)).toEqual(['bridge: fdb replace 02:00:00:00:00:05 dev ltvx100 dst 192.0.2.12']);
    const local = resource('fdb', {
      dev: 'ltv000000000001',
      mac: '02:00:00:00:00:01',
      dst: null,
      master: true,
    });
    expect(up(local)).toEqual([
      'bridge: fdb replace 02:00:00:00:00:01 dev ltv000000000001 master static',
    ]);
    expect(del(local)).toEqual(['bridge: fdb del 02:00:00:00:00:01 dev ltv000000000001 master']);
    const fabric = resource('fdb', {
      dev: 'ltvx100',
      mac: '02:00:00:00:00:05',
      dst: '192.0.2.12',
      master: true,
    });
    expect(up(fabric)).toEqual([
      'bridge: fdb replace 02:00:00:00:00:05 dev ltvx100 master static',
      'bridge: fdb replace 02:00:00:00:00:05 dev ltvx100 dst 192.0.2.12',
    ]);
    expect(del(fabric)).toEqual([
      'bridge: fdb del 02:00:00:00:00:05 dev ltvx100 dst 192.0.2.12 self',
      'bridge: fdb del 02:00:00:00:00:05 dev ltvx100 master',
    ]);
  });

  it('sysctl: written in the host namespace, left as is on delete', () => {
    const s = resource('sysctl', { name: 'net.ipv4.ip_forward', value: '1' });
    expect(up(s)).toEqual(['sysctl: net.ipv4.ip_forward=1']);
    expect(del(s)).toEqual([]);
  });

  it('devices are deleted only when present (deleting the absent is harmless)', () => {
    expect(del(bridge)).toEqual([]);
    expect(del(bridge, ctx(['ltbr-aa']))).toEqual(['ip: link del ltbr-aa']);
    expect(del(vxlan, ctx(['ltvx100']))).toEqual(['ip: link del ltvx100']);
  });
});

describe('renderNftables', () => {
  it('renders one table, rules per filter in key order, replacing the previous table', () => {
    const a = resource('filter', { network: 'a', bridge: 'ltbr-bb', accept: [], snat: null });
    const b = resource('filter', {
      network: 'b',
      bridge: 'ltbr-aa',
      accept: ['10.1.0.0/24', '10.2.0.0/24', 'fd00::/64'],
      snat: null,
    });
    expect(renderNftables([a, b])).toBe(
      [
        'add table inet lattice',
        'delete table inet lattice',
        'table inet lattice {',
        '\tchain forward {',
        '\t\ttype filter hook forward priority 0; policy accept;',
        '\t\tiifname "ltbr-aa" oifname "ltbr-aa" accept',
        '\t\tiifname "ltbr-aa" ip daddr { 10.1.0.0/24, 10.2.0.0/24 } accept',
        '\t\tiifname "ltbr-aa" ip6 daddr { fd00::/64 } accept',
        '\t\tiifname "ltbr-aa" drop',
        '\t\tiifname "ltbr-bb" oifname "ltbr-bb" accept',
        '\t\tiifname "ltbr-bb" drop',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('removes the table when no filter is left', () => {
    expect(renderNftables([])).toBe('add table inet lattice\ndelete table inet lattice\n');
  });
});

describe('renderNftables with network policy', () => {
  const filter = resource('filter', { network: 'n', bridge: 'ltbr-aa', accept: [], snat: null });
  const tcp = (port: number | null, endPort: number | null = null) =>
    ({ protocol: 'tcp', port, endPort }) as const;
  const rule = (
    policy: string,
    index: number,
    peers: PolicyRuleSpec['peers'],
    ports: PolicyRuleSpec['ports'],
  ): PolicyRuleSpec => ({ policy, policyId: `id-${policy}`, rule: index, peers, ports });
  const policy = (
    veth: string,
    address: string,
    ingress: PolicySpec['ingress'],
    egress: PolicySpec['egress'],
  ) =>
    resource('policy', {
      instance: `i-${veth}`,
      name: veth,
      network: 'n',
      bridge: 'ltbr-aa',
      veth,
      address,
      ingress,
      egress,
    });
  const member = (set: string, address: string) => resource('pmember', { set, address });

  // Ingress only: a set peer on one port, CIDR peers (with and without except) on every
  // port form; numbered ports of one protocol are grouped, overlapping ranges merged.
  const web = policy(
    'ltv00000000000b',
    '10.0.0.11',
    [
      rule('web', 0, [{ set: 'ps_aaaaaaaaaaaa' }], [tcp(8080)]),
      rule(
        'web',
        1,
        [
          { cidr: '10.9.0.0/16', except: ['10.9.1.0/24', '10.9.2.0/24'] },
          { cidr: '192.0.2.0/24', except: [] },
        ],
        [
          { protocol: 'udp', port: 53, endPort: null },
          tcp(443),
          { protocol: 'udp', port: 5000, endPort: 5010 },
          tcp(80),
          tcp(8000, 8100),
          tcp(8050, 8200),
          tcp(null),
          { protocol: 'icmp', port: null, endPort: null },
          { protocol: 'udp', port: null, endPort: null },
        ],
      ),
    ],
    null,
  );
  // Egress only: any port to anyone of an empty set; any address on any protocol.
  const client = policy('ltv00000000000a', '10.0.0.10', null, [
    rule(
      'db "prod"',
      0,
      [{ set: 'ps_bbbbbbbbbbbb' }],
      [{ protocol: 'any', port: null, endPort: null }],
    ),
    rule('db "prod"', 1, null, null),
  ]);
  // Both directions: selected for ingress with no rule (accepts nothing new), egress to
  // one CIDR on any port.
  const locked = policy(
    'ltv00000000000c',
    '10.0.0.12',
    [],
    [rule('lockdown', 0, [{ cidr: '10.0.0.0/24', except: [] }], null)],
  );

  it('renders sets, policy chains and their jumps before the isolation filters', () => {
    const text = renderNftables([
      filter,
      web,
      client,
      locked,
      member('ps_aaaaaaaaaaaa', '10.0.0.12'),
      member('ps_aaaaaaaaaaaa', '10.0.0.10'),
      // A member of a set no chain names (the engine does not send those): not rendered.
      member('ps_ffffffffffff', '10.0.0.99'),
    ]);
    expect(text).toBe(
      [
        'add table inet lattice',
        'delete table inet lattice',
        'table inet lattice {',
        '\tset ps_aaaaaaaaaaaa {',
        '\t\ttype ipv4_addr; flags interval;',
        '\t\telements = { 10.0.0.10, 10.0.0.12 }',
        '\t}',
        '\tset ps_bbbbbbbbbbbb {',
        '\t\ttype ipv4_addr; flags interval;',
        '\t}',
        '\tchain eg_ltv00000000000a {',
        '\t\tct state established,related return',
        `\t\tip daddr @ps_bbbbbbbbbbbb return comment "db 'prod' egress 0"`,
        `\t\treturn comment "db 'prod' egress 1"`,
        '\t\tdrop comment "lattice policy default deny"',
        '\t}',
        '\tchain in_ltv00000000000b {',
        '\t\tct state established,related return',
        '\t\tip saddr @ps_aaaaaaaaaaaa tcp dport 8080 return comment "web ingress 0"',
        '\t\tip saddr 10.9.0.0/16 ip saddr != { 10.9.1.0/24, 10.9.2.0/24 } udp dport { 53, 5000-5010 } return comment "web ingress 1"',
        '\t\tip saddr 10.9.0.0/16 ip saddr != { 10.9.1.0/24, 10.9.2.0/24 } tcp dport { 80, 443, 8000-8200 } return comment "web ingress 1"',
        '\t\tip saddr 10.9.0.0/16 ip saddr != { 10.9.1.0/24, 10.9.2.0/24 } meta l4proto tcp return comment "web ingress 1"',
        '\t\tip saddr 10.9.0.0/16 ip saddr != { 10.9.1.0/24, 10.9.2.0/24 } meta l4proto icmp return comment "web ingress 1"',
        '\t\tip saddr 10.9.0.0/16 ip saddr != { 10.9.1.0/24, 10.9.2.0/24 } meta l4proto udp return comment "web ingress 1"',
        '\t\tip saddr 192.0.2.0/24 udp dport { 53, 5000-5010 } return comment "web ingress 1"',
        '\t\tip saddr 192.0.2.0/24 tcp dport { 80, 443, 8000-8200 } return comment "web ingress 1"',
        '\t\tip saddr 192.0.2.0/24 meta l4proto tcp return comment "web ingress 1"',
        '\t\tip saddr 192.0.2.0/24 meta l4proto icmp return comment "web ingress 1"',
        '\t\tip saddr 192.0.2.0/24 meta l4proto udp return comment "web ingress 1"',
        '\t\tdrop comment "lattice policy default deny"',
        '\t}',
        '\tchain eg_ltv00000000000c {',
        '\t\tct state established,related return',
        '\t\tip daddr 10.0.0.0/24 return comment "lockdown egress 0"',
        '\t\tdrop comment "lattice policy default deny"',
        '\t}',
        '\tchain in_ltv00000000000c {',
        '\t\tct state established,related return',
        '\t\tdrop comment "lattice policy default deny"',
        '\t}',
        '\tchain forward {',
        '\t\ttype filter hook forward priority 0; policy accept;',
        '\t\tiifname "ltbr-aa" ip saddr 10.0.0.10 jump eg_ltv00000000000a',
        '\t\toifname "ltbr-aa" ip daddr 10.0.0.11 jump in_ltv00000000000b',
        '\t\tiifname "ltbr-aa" ip saddr 10.0.0.12 jump eg_ltv00000000000c',
        '\t\toifname "ltbr-aa" ip daddr 10.0.0.12 jump in_ltv00000000000c',
        '\t\tiifname "ltbr-aa" oifname "ltbr-aa" accept',
        '\t\tiifname "ltbr-aa" drop',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('is independent of the order of the resources; a policy alone needs no filter', () => {
    const rs = [web, member('ps_aaaaaaaaaaaa', '10.0.0.10'), client];
    expect(renderNftables([...rs].reverse())).toBe(renderNftables(rs));
    expect(renderNftables([web])).toContain(
      '\tchain forward {\n' +
        '\t\ttype filter hook forward priority 0; policy accept;\n' +
        '\t\toifname "ltbr-aa" ip daddr 10.0.0.11 jump in_ltv00000000000b\n' +
        '\t}\n',
    );
  });

  it("keeps comments within nft's quoting and length rules", () => {
    const odd = policy(
      'ltv00000000000d',
      '10.0.0.13',
      [rule(`a\\b\nc"${'x'.repeat(200)}`, 0, null, null)],
      null,
    );
    // Backslash and newline replaced, the quote made a single quote, cut at 128 characters.
    expect(renderNftables([odd])).toContain(`\t\treturn comment "a_b_c'${'x'.repeat(122)}"\n`);
  });

  it('policy and pmember render no iproute2 lines and are never stale or drifted alone', () => {
    const m = member('ps_aaaaaaaaaaaa', '10.0.0.10');
    expect([...up(web), ...del(web), ...up(m), ...del(m)]).toEqual([]);
    const empty: KernelSnapshot = {
      links: new Map(),
      addrs: [],
      routes: [],
      neighs: [],
      fdb: [],
      namespaces: new Set(),
      nsids: new Map(),
      sysctls: new Map(),
      instances: new Map(),
    };
    expect(compareKernel([web, m], empty, 'lab-i')).toEqual({ repairs: [], stale: [] });
  });
});

describe('egress and floating IPs', () => {
  const netset = resource('netset', { name: 'internal', cidrs: ['10.0.0.0/8', '172.16.0.0/12'] });
  const egress = resource('filter', {
    network: 'a',
    bridge: 'ltbr-aa',
    accept: ['10.1.0.0/24'],
    snat: '192.0.2.11',
  });
  const isolated = resource('filter', { network: 'b', bridge: 'ltbr-bb', accept: [], snat: null });
  const fip = (address: string, bridge: string, ip: string, dev = 'eth0') =>
    resource('fip', {
      address,
      instance: `i-${ip}`,
      name: `vm-${ip}`,
      network: bridge,
      bridge,
      ip,
      dev,
    });
  // Two on one bridge (key order: 203.0.113.10 before 203.0.113.2), one on a bridge
  // without an isolation filter.
  const fipA1 = fip('203.0.113.2', 'ltbr-aa', '10.1.0.5');
  const fipA2 = fip('203.0.113.10', 'ltbr-aa', '10.1.0.6');
  const fipC = fip('203.0.113.7', 'ltbr-cc', '10.3.0.5');

  it('renders the internal set, the forward exceptions and the NAT chains', () => {
    expect(renderNftables([fipC, isolated, fipA1, egress, netset, fipA2])).toBe(
      [
        'add table inet lattice',
        'delete table inet lattice',
        'table inet lattice {',
        '\tset internal {',
        '\t\ttype ipv4_addr; flags interval;',
        '\t\telements = { 10.0.0.0/8, 172.16.0.0/12 }',
        '\t}',
        '\tchain forward {',
        '\t\ttype filter hook forward priority 0; policy accept;',
        '\t\tiifname "ltbr-cc" ip saddr 10.3.0.5 ip daddr != @internal accept',
        '\t\tiifname "ltbr-aa" oifname "ltbr-aa" accept',
        '\t\tiifname "ltbr-aa" ip daddr { 10.1.0.0/24 } accept',
        '\t\tiifname "ltbr-aa" ip saddr 10.1.0.6 ip daddr != @internal accept',
        '\t\tiifname "ltbr-aa" ip saddr 10.1.0.5 ip daddr != @internal accept',
        '\t\tiifname "ltbr-aa" ip daddr != @internal accept',
        '\t\tiifname "ltbr-aa" drop',
        '\t\tiifname "ltbr-bb" oifname "ltbr-bb" accept',
        '\t\tiifname "ltbr-bb" drop',
        '\t}',
        '\tchain prerouting {',
        '\t\ttype nat hook prerouting priority dstnat; policy accept;',
        '\t\tip daddr 203.0.113.10 dnat ip to 10.1.0.6',
        '\t\tip daddr 203.0.113.2 dnat ip to 10.1.0.5',
        '\t\tip daddr 203.0.113.7 dnat ip to 10.3.0.5',
        '\t}',
        '\tchain postrouting {',
        '\t\ttype nat hook postrouting priority srcnat; policy accept;',
        '\t\tiifname "ltbr-aa" ip saddr 10.1.0.6 ip daddr != @internal snat ip to 203.0.113.10',
        '\t\tiifname "ltbr-aa" ip saddr 10.1.0.5 ip daddr != @internal snat ip to 203.0.113.2',
        '\t\tiifname "ltbr-cc" ip saddr 10.3.0.5 ip daddr != @internal snat ip to 203.0.113.7',
        '\t\tiifname "ltbr-aa" ip daddr != @internal snat ip to 192.0.2.11',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('without netset, egress or floating IP: no internal set and no NAT chains', () => {
    const text = renderNftables([isolated]);
    expect(text).toBe(
      [
        'add table inet lattice',
        'delete table inet lattice',
        'table inet lattice {',
        '\tchain forward {',
        '\t\ttype filter hook forward priority 0; policy accept;',
        '\t\tiifname "ltbr-bb" oifname "ltbr-bb" accept',
        '\t\tiifname "ltbr-bb" drop',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
    expect(text).not.toContain('internal');
    expect(text).not.toContain('nat');
  });

  it('defines the set whenever a rule may name it, without elements when none are known', () => {
    // A netset alone: the set, no NAT chains.
    const alone = renderNftables([netset, isolated]);
    expect(alone).toContain('\tset internal {\n');
    expect(alone).not.toContain('chain prerouting');
    // Egress before its netset arrived: an empty set, so the load does not fail.
    const early = renderNftables([egress]);
    expect(early).toContain('\tset internal {\n\t\ttype ipv4_addr; flags interval;\n\t}\n');
    expect(early).toContain('\t\tiifname "ltbr-aa" ip daddr != @internal snat ip to 192.0.2.11\n');
    const fipOnly = renderNftables([fipC]);
    expect(fipOnly).toContain('\tset internal {\n\t\ttype ipv4_addr; flags interval;\n\t}\n');
    expect(fipOnly).toContain('\t\tip daddr 203.0.113.7 dnat ip to 10.3.0.5\n');
    // Egress alone: an empty prerouting chain, the egress translation only.
    expect(early).toContain(
      '\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t}\n',
    );
  });

  it('fip: its /32 labelled <dev>:lt within IFNAMSIZ, unlabelled beyond; netset has no lines', () => {
    expect(up(fipA1)).toEqual(['ip: addr replace 203.0.113.2/32 dev eth0 label eth0:lt']);
    expect(del(fipA1)).toEqual(['ip: addr del 203.0.113.2/32 dev eth0']);
    // 12 characters + ':lt' = 15: labelled; 13 + 3 = 16: the kernel would refuse the label.
    const twelve = fip('203.0.113.3', 'ltbr-aa', '10.1.0.7', 'enp0s31f6abc');
    expect(up(twelve)).toEqual([
      'ip: addr replace 203.0.113.3/32 dev enp0s31f6abc label enp0s31f6abc:lt',
    ]);
    const thirteen = fip('203.0.113.4', 'ltbr-aa', '10.1.0.8', 'enp0s31f6abcd');
    expect(up(thirteen)).toEqual(['ip: addr replace 203.0.113.4/32 dev enp0s31f6abcd']);
    expect(del(thirteen)).toEqual(['ip: addr del 203.0.113.4/32 dev enp0s31f6abcd']);
    expect([...up(netset), ...del(netset)]).toEqual([]);
  });

  const addr = (local: string, prefixlen: number, label?: string) => ({
    family: 'inet',
    local,
    prefixlen,
    scope: 'global',
    ...(label ? { label } : {}),
  });
  const snapshot = (addrs: KernelSnapshot['addrs']): KernelSnapshot => ({
    links: new Map([
      ['eth0', { ifname: 'eth0', linkinfo: { info_kind: 'veth' } }],
      ['eth1', { ifname: 'eth1', linkinfo: { info_kind: 'veth' } }],
      [
        'ltbr-aa',
        { ifname: 'ltbr-aa', mtu: 1450, flags: ['UP'], linkinfo: { info_kind: 'bridge' } },
      ],
    ]),
    addrs,
    routes: [],
    neighs: [],
    fdb: [],
    namespaces: new Set(),
    nsids: new Map(),
    sysctls: new Map(),
    instances: new Map(),
  });
  const bridgeAa = resource('bridge', { name: 'ltbr-aa', network: 'a', mtu: 1450, mac: null });

  it('fip: present when its /32 is on its device; netset is never drift on its own', () => {
    const snap = snapshot([
      { ifname: 'eth0', addr_info: [addr('192.0.2.11', 24, 'eth0'), addr('203.0.113.2', 32)] },
    ]);
    // Compared like an address: the label does not matter.
    expect(compareKernel([bridgeAa, fipA1, netset], snap, 'lab-i')).toEqual({
      repairs: [],
      stale: [],
    });
    const { repairs } = compareKernel([bridgeAa, fipA1, fipA2], snap, 'lab-i');
    expect(repairs.map((r) => [r.resource.key, r.op, r.message])).toEqual([
      ['fip:203.0.113.10', 'create', 'floating IP 203.0.113.10 missing on eth0'],
    ]);
  });

  it('a `:lt` address no fip wants is stale, on any device; the underlay address never', () => {
    const snap = snapshot([
      {
        ifname: 'eth0',
        addr_info: [
          addr('192.0.2.11', 24, 'eth0'), // the host's own underlay address
          addr('192.0.2.99', 32, 'eth0'), // someone else's, unlabelled
          addr('203.0.113.2', 32, 'eth0:lt'), // desired
          addr('203.0.113.9', 32, 'eth0:lt'), // released
          addr('198.51.100.0', 24, 'eth0:lt'), // not a floating IP's shape: left alone
        ],
      },
      // Moved to another device than the one it is wanted on.
      { ifname: 'eth1', addr_info: [addr('203.0.113.2', 32, 'eth1:lt')] },
      // On an owned device: a stale floating IP (by its label), not a stale address.
      {
        ifname: 'ltbr-aa',
        addr_info: [addr('10.1.0.1', 24, 'ltbr-aa'), addr('203.0.113.8', 32, 'ltbr-aa:lt')],
      },
    ]);
    const wanted = resource('address', { dev: 'ltbr-aa', address: '10.1.0.1/24' });
    const { stale } = compareKernel([bridgeAa, wanted, fipA1], snap, 'lab-i');
    expect(stale.map((s) => [s.key, s.message, show(s.steps)])).toEqual([
      [
        'fip:203.0.113.9',
        'stale floating IP 203.0.113.9 on eth0',
        ['ip: addr del 203.0.113.9/32 dev eth0'],
      ],
      [
        'fip:203.0.113.2:eth1',
        'stale floating IP 203.0.113.2 on eth1',
        ['ip: addr del 203.0.113.2/32 dev eth1'],
      ],
      [
        'fip:203.0.113.8',
        'stale floating IP 203.0.113.8 on ltbr-aa',
        ['ip: addr del 203.0.113.8/32 dev ltbr-aa'],
      ],
    ]);
    // Wanted as a plain address: not stale either.
    const asAddress = resource('address', { dev: 'eth0', address: '203.0.113.9/32' });
    expect(
      compareKernel([bridgeAa, wanted, fipA1, asAddress], snap, 'lab-i').stale.map((s) => s.key),
    ).toEqual(['fip:203.0.113.2:eth1', 'fip:203.0.113.8']);
  });
});

describe('renderBirdConfig', () => {
  const spec = {
    asn: 64512,
    routerId: '192.0.2.11',
    routeReflector: true,
    announce: ['10.244.0.0/26', '10.244.0.64/26'],
    interfaces: ['ltbr-aa'],
    peers: [
      { address: '192.0.2.12', asn: 64512, rrClient: true },
      { address: '192.0.2.13', asn: 64512, rrClient: false },
    ],
  };

  it('renders router id, device, direct, kernel and one bgp protocol per peer', () => {
    expect(renderBirdConfig(spec)).toBe(
      [
        '# Lattice BGP speaker. Generated by the agent: every change overwrites this file.',
        'router id 192.0.2.11;',
        '',
        'define LATTICE_ANNOUNCE = [ 10.244.0.0/26, 10.244.0.64/26 ];',
        '',
        'protocol device {',
        '  scan time 1;',
        '}',
        '',
        'protocol direct lattice_blocks {',
        '  ipv4 { import where net ~ LATTICE_ANNOUNCE; };',
        '  interface "ltbr-aa";',
        '}',
        '',
        'protocol kernel {',
        '  ipv4 { import none; export where source = RTS_BGP; };',
        '}',
        '',
        'filter lattice_export {',
        '  if source = RTS_BGP then accept;',
        '  if source = RTS_DEVICE && net ~ LATTICE_ANNOUNCE then accept;',
        '  reject;',
        '}',
        '',
        'protocol bgp peer_192_0_2_12 {',
        '  local 192.0.2.11 as 64512;',
        '  neighbor 192.0.2.12 as 64512;',
        '  direct;',
        '  rr client;',
        '  connect delay time 1;',
        '  keepalive time 3;',
        '  ipv4 { import all; export filter lattice_export; };',
        '}',
        '',
        'protocol bgp peer_192_0_2_13 {',
        '  local 192.0.2.11 as 64512;',
        '  neighbor 192.0.2.13 as 64512;',
        '  direct;',
        '  connect delay time 1;',
        '  keepalive time 3;',
        '  ipv4 { import all; export filter lattice_export; };',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('a plain speaker never re-exports BGP routes; no interfaces, no direct protocol', () => {
    const text = renderBirdConfig({ ...spec, routeReflector: false, interfaces: [], announce: [] });
    expect(text).not.toContain('RTS_BGP then accept');
    expect(text).not.toContain('protocol direct');
    expect(text).toContain('define LATTICE_ANNOUNCE = [  ];');
  });

  it('originates floating IPs held here from the uplink, with or without block bridges', () => {
    const fips = { ...spec, announce: ['192.0.2.130/32'], interfaces: [], uplink: 'eth0' };
    expect(renderBirdConfig(fips)).toContain(
      [
        'protocol direct lattice_blocks {',
        '  ipv4 { import where net ~ LATTICE_ANNOUNCE; };',
        '  interface "eth0";',
        '}',
      ].join('\n'),
    );
    expect(renderBirdConfig({ ...spec, uplink: 'eth0' })).toContain(
      '  interface "ltbr-aa", "eth0";',
    );
  });
});

describe('parseBatchErrors', () => {
  it('attributes `-force` failures to lines', () => {
    const stderr =
      'Error: Nexthop has invalid gateway.\nCommand failed -:1\nCannot find device "x"\nCommand failed -:3\n';
    const o = parseBatchErrors(stderr, 1);
    expect([...o.failed]).toEqual([
      [0, 'Error: Nexthop has invalid gateway.'],
      [2, 'Cannot find device "x"'],
    ]);
    expect(o.aborted).toBeNull();
  });

  it('detects an exit in the middle of the batch', () => {
    const o = parseBatchErrors(
      'Command failed -:1\nError: inet address is expected rather than "bogus".\n',
      1,
    );
    expect(o.aborted).toBe('Error: inet address is expected rather than "bogus".');
  });
});

describe('compareKernel', () => {
  const empty: KernelSnapshot = {
    links: new Map(),
    addrs: [],
    routes: [],
    neighs: [],
    fdb: [],
    namespaces: new Set(),
    nsids: new Map(),
    sysctls: new Map(),
    instances: new Map(),
  };

  it('ignores what the kernel makes itself; flags learned entries on fabric ports', () => {
    const fabricPort = resource('port', { ...port.spec, flags: FABRIC });
    const snap: KernelSnapshot = {
      ...empty,
      links: new Map([
        ['ltv000000000001', { ifname: 'ltv000000000001', linkinfo: { info_kind: 'veth' } }],
        ['eth0', { ifname: 'eth0', linkinfo: { info_kind: 'veth' } }],
        ['ltbr-old', { ifname: 'ltbr-old', linkinfo: { info_kind: 'bridge' } }],
      ]),
      routes: [
        { dst: '10.0.0.0/24', dev: 'ltbr-aa', protocol: 'kernel' },
        { dst: '10.9.0.0/24', gateway: '192.0.2.9', protocol: '76' },
        { dst: '10.8.0.0/24', gateway: '192.0.2.9', protocol: 'bird' },
      ],
      fdb: [
        {
          mac: '33:33:00:00:00:01',
          ifname: 'ltv000000000001',
          flags: ['self'],
          state: 'permanent',
        },
        {
          mac: 'aa:bb:cc:00:00:01',
          ifname: 'ltv000000000001',
          master: 'ltbr-aa',
          state: 'permanent',
        },
        { mac: '02:00:00:00:00:77', ifname: 'ltv000000000001', master: 'ltbr-aa' },
      ],
    };
    const { stale } = compareKernel([fabricPort], snap, 'lab-i');
    expect(stale.map((s) => [s.key, show(s.steps)])).toEqual([
      ['bridge:ltbr-old', ['ip: link del ltbr-old']],
      ['route:10.9.0.0/24', ['ip: route del 10.9.0.0/24 proto 76']],
      [
        'fdb:ltv000000000001:02:00:00:00:00:77:learned',
        ['bridge: fdb del 02:00:00:00:00:77 dev ltv000000000001 master'],
      ],
    ]);
  });
});
