/**
 * Pure rendering of desired-state resources into Linux commands: `ip -batch` and
 * `bridge -batch` lines, sysctl writes, the nftables table and the BIRD 2 configuration.
 *
 * Nothing here spawns a process or reads the kernel. What rendering needs to know about
 * the kernel (which devices and namespaces exist right now) comes in a `RenderContext`,
 * read back by the caller just before, so that every rendered line is idempotent: devices
 * are only `add`ed when absent, everything else uses `replace` forms, and deletes of absent
 * objects are skipped or tolerated (see `isAbsentError`).
 */
import { OWNER_PREFIX } from '../../../../../libs/engine/src/names.js';
import type { UpsertOp } from '../../../../../libs/engine/src/diff.js';
import type { PolicyPort } from '../../../../../libs/model/src/index.js';
import type {
  BgpSpec,
  FdbSpec,
  FilterSpec,
  FloatingSpec,
  NetSetSpec,
  PolicyPeerSpec,
  PolicyRuleSpec,
  PolicySpec,
  PortFlags,
  Resource,
  ResourceOf,
} from '../../../../../libs/engine/src/resources.js';
import { renderPortDelete, renderPortUpsert } from './ports.js';

/**
 * Where a line runs. Stages run in a fixed order (`UPSERT_STAGES`, `DELETE_STAGES`), each
 * as one batch, so a resource's own lines must respect that order too — they do, because
 * every resource needs namespaces before links, links before bridge port flags and FDB
 * entries, and the instance side of a port last.
 * - `netns`: the global `ip -batch` (no `-n`): `netns add|del`, `netns exec <inst> sysctl`.
 * - `sysctl`: `sysctl -w <line>` in the host namespace (no `-n` for sysctls).
 * - `ip` / `bridge`: the host namespace's `ip -batch` / `bridge -batch`.
 * - `instance`: `ip -n <ns> -batch` inside an instance namespace (`Step.ns`).
 */
export type Stage = 'netns' | 'sysctl' | 'ip' | 'bridge' | 'instance';

export const UPSERT_STAGES: readonly Stage[] = ['netns', 'sysctl', 'ip', 'bridge', 'instance'];
/** Dependents first: FDB entries, then links and routes, then the namespaces behind ports. */
export const DELETE_STAGES: readonly Stage[] = ['bridge', 'instance', 'ip', 'netns', 'sysctl'];

export interface Step {
  readonly stage: Stage;
  readonly line: string;
  /** The instance namespace, for `instance` steps. */
  readonly ns?: string;
  /** Best effort: a failure of this line is not an error of its resource. */
  readonly optional?: boolean;
}

/** What rendering needs to know about the kernel, read back just before rendering. */
export interface RenderContext {
  /** Prefix of instance namespaces: `<prefix>-<port name>`. */
  readonly instanceNetnsPrefix: string;
  /** Devices that exist in the host namespace. */
  readonly links: ReadonlySet<string>;
  /** Named network namespaces that exist (`ip netns list`). */
  readonly namespaces: ReadonlySet<string>;
}

/**
 * Routes the agent installs carry this protocol number: it is how stale routes are
 * recognised as ours (the ownership prefix cannot be put on a route). 76 (`L`) is unused
 * in iproute2's rt_protos (Calico's felix uses 80, BIRD 12).
 */
export const ROUTE_PROTOCOL = 76;

export const ZERO_MAC = '00:00:00:00:00:00';

/** Bridge port defaults: what a `null` PortFlags means (replace semantics, not "leave"). */
export const DEFAULT_PORT_FLAGS: PortFlags = {
  learning: true,
  flood: true,
  mcastFlood: true,
  bcastFlood: true,
  neighSuppress: false,
};

/** Kernel objects named with the ownership prefix are the agent's to remove. */
export function isOwned(name: string): boolean {
  return name.startsWith(OWNER_PREFIX);
}

const onOff = (b: boolean) => (b ? 'on' : 'off');

/** `bridge link set` line for a port's flags (null → the bridge defaults). */
export function portFlagsLine(dev: string, flags: PortFlags | null): string {
  const f = flags ?? DEFAULT_PORT_FLAGS;
  return (
    `link set dev ${dev} learning ${onOff(f.learning)} flood ${onOff(f.flood)} ` +
    `mcast_flood ${onOff(f.mcastFlood)} bcast_flood ${onOff(f.bcastFlood)} ` +
    `neigh_suppress ${onOff(f.neighSuppress)}`
  );
}

const ip = (line: string): Step => ({ stage: 'ip', line });
const br = (line: string): Step => ({ stage: 'bridge', line });

/**
 * A device is (re)created when it is absent, or deleted first when the upsert says the
 * kernel cannot change it in place.
 */
function deviceLifecycle(name: string, op: UpsertOp, ctx: RenderContext) {
  const exists = ctx.links.has(name);
  const del = op === 'replace' && exists ? [ip(`link del ${name}`)] : [];
  return { del, create: !exists || op === 'replace' };
}

/**
 * The label suffix of floating IP addresses: how stale ones are recognised as ours (an
 * address cannot carry the ownership prefix). `ip addr` shows them as `<dev>:lt`.
 */
export const FIP_LABEL_SUFFIX = ':lt';

/** Longest interface name, and so longest address label (IFNAMSIZ without its NUL). */
const IFNAMSIZ = 15;

/**
 * The label of a floating IP on `dev`: `<dev>:lt`, or null when that would exceed
 * IFNAMSIZ (the kernel refuses the address then; it goes on unlabelled, and is not
 * recognised as stale by its label).
 */
export function fipLabel(dev: string): string | null {
  const label = `${dev}${FIP_LABEL_SUFFIX}`;
  return label.length <= IFNAMSIZ ? label : null;
}

/**
 * The lines that make the kernel hold `r` (`op` from the diff; `create` for a resource that
 * is simply missing). `filter`, `policy`, `pmember`, `netset` and `bgp` render to whole
 * files, not lines: see `renderNftables` and `renderBirdConfig`; `fip` renders its address
 * here and its NAT rules into the nftables table.
 */
export function renderUpsert(r: Resource, op: UpsertOp, ctx: RenderContext): Step[] {
  switch (r.kind) {
    case 'sysctl':
      return [{ stage: 'sysctl', line: `${r.spec.name}=${r.spec.value}` }];
    case 'bridge': {
      const s = r.spec;
      const { del, create } = deviceLifecycle(s.name, op, ctx);
      const mac = s.mac ? ` address ${s.mac}` : '';
      return [
        ...del,
        ...(create ? [ip(`link add ${s.name} type bridge`)] : []),
        ip(`link set ${s.name}${mac} mtu ${s.mtu} up`),
      ];
    }
    case 'uplink': {
      const s = r.spec;
      // The lab pre-wires `<parent>.<vid>` as a veth (no 802.1Q in its kernel): an existing
      // device of that name is used as is, never recreated, unless the agent owns it.
      const exists = ctx.links.has(s.name);
      const recreate = op === 'replace' && exists && isOwned(s.name);
      return [
        ...(recreate ? [ip(`link del ${s.name}`)] : []),
        ...(!exists || recreate
          ? [ip(`link add link ${s.parent} name ${s.name} type vlan id ${s.vlanId}`)]
          : []),
        ip(`link set ${s.name} master ${s.master} up`),
        br(portFlagsLine(s.name, s.flags)),
      ];
    }
    case 'vxlan': {
      const s = r.spec;
      const { del, create } = deviceLifecycle(s.name, op, ctx);
      const add =
        `link add ${s.name} type vxlan id ${s.vni} local ${s.local} dstport ${s.dstport} ` +
        `dev ${s.dev} ${s.learning ? 'learning' : 'nolearning'}${s.proxy ? ' proxy' : ''}`;
      return [
        ...del,
        ...(create ? [ip(add)] : []),
        ip(`link set ${s.name} master ${s.master} mtu ${s.mtu} up`),
        br(portFlagsLine(s.name, s.flags)),
      ];
    }
    case 'tunnel': {
      const s = r.spec;
      const { del, create } = deviceLifecycle(s.name, op, ctx);
      return [
        ...del,
        ...(create ? [ip(`link add ${s.name} type ${s.mode} local ${s.local} dev ${s.dev}`)] : []),
        ip(`link set ${s.name} up`),
      ];
    }
    case 'port':
      return renderPortUpsert(r.spec, op, ctx);
    case 'address':
      return [ip(`addr replace ${r.spec.address} dev ${r.spec.dev}${nodad(r.spec.address)}`)];
    case 'route': {
      const s = r.spec;
      const dev = s.dev ? ` dev ${s.dev}` : '';
      return [
        ip(
          `route replace ${s.dst} via ${s.via}${dev}${s.onlink ? ' onlink' : ''} proto ${ROUTE_PROTOCOL}`,
        ),
      ];
    }
    case 'neigh':
      return [
        ip(`neigh replace ${r.spec.ip} lladdr ${r.spec.lladdr} dev ${r.spec.dev} nud permanent`),
      ];
    case 'fdb':
      return fdbUpsert(r.spec);
    case 'fip': {
      // The host answers ARP for the address on the underlay; the gratuitous ARP that
      // tells neighbours it moved here is sent by the data plane once this has applied.
      const label = fipLabel(r.spec.dev);
      return [
        ip(`addr replace ${r.spec.address}/32 dev ${r.spec.dev}${label ? ` label ${label}` : ''}`),
      ];
    }
    case 'filter':
    case 'policy':
    case 'pmember':
    case 'netset':
    case 'bgp':
      return [];
  }
}

/** IPv6 addresses would stay tentative for 1–2 s (DAD): the agent's own are known unique. */
function nodad(address: string): string {
  return address.includes(':') ? ' nodad' : '';
}

function fdbUpsert(s: FdbSpec): Step[] {
  const steps: Step[] = [];
  if (s.master) steps.push(br(`fdb replace ${s.mac} dev ${s.dev} master static`));
  if (s.dst !== null) {
    // Flood-list entries share the all-zero MAC: `replace` would overwrite the one remote
    // of the entry, `append` adds a remote (and is a no-op when that remote is present).
    const verb = s.mac === ZERO_MAC ? 'append' : 'replace';
    steps.push(br(`fdb ${verb} ${s.mac} dev ${s.dev} dst ${s.dst}`));
  }
  return steps;
}

/**
 * The lines that remove `r` from the kernel. Deleting what is already absent is harmless:
 * devices are only deleted when present, and the executor tolerates "not found" answers
 * of the other delete lines.
 */
export function renderDelete(r: Resource, ctx: RenderContext): Step[] {
  switch (r.kind) {
    // A sysctl has no "absent" state and its previous value is unknown: it is left as is
    // (turning ip_forward off under other workloads of the host would be worse).
    case 'sysctl':
      return [];
    case 'bridge':
    case 'vxlan':
    case 'tunnel':
      return ctx.links.has(r.spec.name) ? [ip(`link del ${r.spec.name}`)] : [];
    case 'uplink': {
      const s = r.spec;
      if (!ctx.links.has(s.name)) return [];
      // A pre-wired `<parent>.<vid>` is not ours to delete: only unplug it from the bridge.
      return [ip(isOwned(s.name) ? `link del ${s.name}` : `link set ${s.name} nomaster`)];
    }
    case 'port':
      return renderPortDelete(r.spec, ctx);
    case 'address':
      return [ip(`addr del ${r.spec.address} dev ${r.spec.dev}`)];
    case 'route':
      // Only our route: a route to the same destination from someone else stays.
      return [ip(`route del ${r.spec.dst} proto ${ROUTE_PROTOCOL}`)];
    case 'neigh':
      return [ip(`neigh del ${r.spec.ip} dev ${r.spec.dev}`)];
    case 'fdb': {
      const s = r.spec;
      const steps: Step[] = [];
      if (s.dst !== null) steps.push(br(`fdb del ${s.mac} dev ${s.dev} dst ${s.dst} self`));
      if (s.master) steps.push(br(`fdb del ${s.mac} dev ${s.dev} master`));
      return steps;
    }
    case 'fip':
      return [ip(`addr del ${r.spec.address}/32 dev ${r.spec.dev}`)];
    case 'filter':
    case 'policy':
    case 'pmember':
    case 'netset':
    case 'bgp':
      return [];
  }
}

/**
 * Error answers that mean "already absent": a delete that gets one has reached its goal.
 */
export function isAbsentError(message: string): boolean {
  return /No such (file or directory|process|device)|Cannot find device|does not exist|Address not found|Cannot assign requested address/i.test(
    message,
  );
}

export const NFT_TABLE = 'inet lattice';

/**
 * The kinds rendered into `table inet lattice`. They are whole-file resources: any change
 * to one of them re-renders the table from all of them and reloads it (`renderNftables`).
 * `fip` is one too, besides its address (`renderUpsert`).
 */
export const NFT_KINDS: ReadonlySet<Resource['kind']> = new Set([
  'filter',
  'policy',
  'pmember',
  'netset',
  'fip',
]);

export type NftResource =
  | ResourceOf<'filter'>
  | ResourceOf<'policy'>
  | ResourceOf<'pmember'>
  | ResourceOf<'netset'>
  | ResourceOf<'fip'>;

export function isNftResource(r: Resource): r is NftResource {
  return NFT_KINDS.has(r.kind);
}

const byKey = (a: NftResource, b: NftResource) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * The whole `table inet lattice`, loaded with `nft -f` in one transaction: the leading
 * `add` + `delete` replaces the previous table atomically (no window without rules) and
 * works whether or not it existed; conntrack entries survive it, so established flows of
 * a policy that stays allowed are not cut by a reload. With no nftables resource at all
 * the table is removed.
 *
 * Inside: the set `internal` (every Lattice network's CIDR, when egress or a floating IP
 * needs it), the peer sets the policies name, the policy chains of the local instances,
 * then the forward base chain — jumps into the policy chains first, then the floating IPs
 * of bridges without a filter, then the isolation filters with their floating IP and
 * egress exceptions before the drop (a `return` from a policy chain continues with the
 * next rule of `forward`) — and, with any floating IP or egress, the NAT base chains.
 * Chains are defined before the rules that jump to them.
 */
export function renderNftables(resources: readonly NftResource[]): string {
  const head = `add table ${NFT_TABLE}\ndelete table ${NFT_TABLE}\n`;
  if (resources.length === 0) return head;
  const filters: FilterSpec[] = [];
  const policies: PolicySpec[] = [];
  const netsets: NetSetSpec[] = [];
  const fips: FloatingSpec[] = [];
  const members = new Map<string, string[]>();
  for (const r of [...resources].sort(byKey)) {
    if (r.kind === 'filter') filters.push(r.spec);
    else if (r.kind === 'policy') policies.push(r.spec);
    else if (r.kind === 'netset') netsets.push(r.spec);
    else if (r.kind === 'fip') fips.push(r.spec);
    else {
      const list = members.get(r.spec.set);
      if (list) list.push(r.spec.address);
      else members.set(r.spec.set, [r.spec.address]);
    }
  }
  const snats = filters.filter((f): f is Egress => f.snat !== null);
  const nat = fips.length > 0 || snats.length > 0;
  // Defined whenever a rule may name it, with no elements if the netset is missing, so
  // that the load never fails on an unknown set.
  const internal =
    netsets.length > 0 || nat
      ? setLines(INTERNAL_SET, netsets.find((n) => n.name === INTERNAL_SET)?.cidrs ?? [])
      : [];
  // Only the sets some chain names: members of any other set (the engine never sends
  // those) would be an unused set, and a missing one would make the whole load fail.
  const sets = [...new Set(policies.flatMap(policySets))].sort();
  const filtered = new Set(filters.map((f) => f.bridge));
  const forward = [
    ...policies.flatMap(policyJumps),
    // A floating IP on a bridge without isolation filter still needs its way out.
    ...fips.filter((f) => !filtered.has(f.bridge)).map(fipForward),
    ...filters.flatMap((f) => filterRules(f, fips)),
  ];
  const body = [
    ...internal,
    ...sets.flatMap((name) => setLines(name, members.get(name) ?? [])),
    ...policies.flatMap(policyChains),
    'chain forward {',
    '\ttype filter hook forward priority 0; policy accept;',
    ...forward.map((r) => `\t${r}`),
    '}',
    ...(nat ? natChains(fips, snats) : []),
  ];
  return head + `table ${NFT_TABLE} {\n` + body.map((l) => `\t${l}\n`).join('') + `}\n`;
}

/** A network's isolation rules, with the floating IPs (`fips`: all, by key) of its bridge. */
function filterRules(s: FilterSpec, fips: readonly FloatingSpec[]): string[] {
  const iif = `iifname "${s.bridge}"`;
  const v4 = s.accept.filter((c) => !c.includes(':'));
  const v6 = s.accept.filter((c) => c.includes(':'));
  return [
    // Bridged traffic crosses this hook too (br_netfilter is on in new namespaces).
    `${iif} oifname "${s.bridge}" accept`,
    ...(v4.length ? [`${iif} ip daddr { ${v4.join(', ')} } accept`] : []),
    ...(v6.length ? [`${iif} ip6 daddr { ${v6.join(', ')} } accept`] : []),
    // Out of Lattice: an instance with a floating IP, then any instance when egress is on.
    ...fips.filter((f) => f.bridge === s.bridge).map(fipForward),
    ...(s.snat !== null ? [`${iif} ip daddr != @${INTERNAL_SET} accept`] : []),
    `${iif} drop`,
  ];
}

// ---- egress and floating IPs (FilterSpec.snat, NetSetSpec, FloatingSpec) ---------------

/** The `netset`: every Lattice network's CIDR. */
const INTERNAL_SET = 'internal';

/** A filter of a network with egress. */
type Egress = FilterSpec & { readonly snat: string };

function fipForward(f: FloatingSpec): string {
  return `iifname "${f.bridge}" ip saddr ${f.ip} ip daddr != @${INTERNAL_SET} accept`;
}

/**
 * Inbound traffic to a floating IP is translated before routing (so it is forwarded to the
 * instance and meets its ingress policy); outbound, an instance's floating IP comes before
 * its network's egress address. Replies are translated back by conntrack. An inet table
 * needs the `ip` of `dnat ip to` / `snat ip to`.
 */
function natChains(fips: readonly FloatingSpec[], snats: readonly Egress[]): string[] {
  const outside = `ip daddr != @${INTERNAL_SET}`;
  return [
    'chain prerouting {',
    '\ttype nat hook prerouting priority dstnat; policy accept;',
    ...fips.map((f) => `\tip daddr ${f.address} dnat ip to ${f.ip}`),
    '}',
    'chain postrouting {',
    '\ttype nat hook postrouting priority srcnat; policy accept;',
    ...fips.map(
      (f) => `\tiifname "${f.bridge}" ip saddr ${f.ip} ${outside} snat ip to ${f.address}`,
    ),
    ...snats.map((s) => `\tiifname "${s.bridge}" ${outside} snat ip to ${s.snat}`),
    '}',
  ];
}

// ---- network policy (PolicySpec in resources.ts) --------------------------------------

/** Names of the peer sets a policy's chains use. */
function policySets(p: PolicySpec): string[] {
  return [...(p.ingress ?? []), ...(p.egress ?? [])].flatMap((r) =>
    (r.peers ?? []).flatMap((peer) => ('set' in peer ? [peer.set] : [])),
  );
}

/** A peer set; `flags interval` so that one type serves addresses and prefixes alike. */
function setLines(name: string, addresses: readonly string[]): string[] {
  const sorted = [...addresses].sort();
  return [
    `set ${name} {`,
    '\ttype ipv4_addr; flags interval;',
    // An empty set is valid: the rules naming it match nothing.
    ...(sorted.length ? [`\telements = { ${sorted.join(', ')} }`] : []),
    '}',
  ];
}

/**
 * Forwarded traffic enters an instance's chains by its address on its bridge: from the
 * bridge (it sends: egress) and to the bridge (it receives: ingress). For bridged traffic
 * br_netfilter gives the bridge as both interfaces; routed traffic has the bridge on one side.
 */
function policyJumps(p: PolicySpec): string[] {
  return [
    ...(p.egress !== null ? [`iifname "${p.bridge}" ip saddr ${p.address} jump eg_${p.veth}`] : []),
    ...(p.ingress !== null
      ? [`oifname "${p.bridge}" ip daddr ${p.address} jump in_${p.veth}`]
      : []),
  ];
}

/** `eg_<veth>` / `in_<veth>`: at most 18 characters (veth names are ≤ 15). */
function policyChains(p: PolicySpec): string[] {
  return [
    ...(p.egress !== null ? policyChain(`eg_${p.veth}`, 'egress', p.egress) : []),
    ...(p.ingress !== null ? policyChain(`in_${p.veth}`, 'ingress', p.ingress) : []),
  ];
}

/**
 * Replies of allowed connections pass first (stateful); then one `return` (allowed: back
 * to `forward`) per peer × port group of each rule, in order; anything else is dropped.
 */
function policyChain(
  name: string,
  direction: 'ingress' | 'egress',
  rules: readonly PolicyRuleSpec[],
): string[] {
  // The peer is where ingress comes from and where egress goes to.
  const field = direction === 'ingress' ? 'saddr' : 'daddr';
  const lines = [`chain ${name} {`, '\tct state established,related return'];
  for (const r of rules) {
    const comment = `comment "${nftComment(`${r.policy} ${direction} ${r.rule}`)}"`;
    const peers = r.peers === null ? [''] : r.peers.map((peer) => peerMatch(peer, field));
    for (const peer of peers) {
      for (const port of portMatches(r.ports)) {
        lines.push(`\t${[peer, port, 'return', comment].filter((x) => x !== '').join(' ')}`);
      }
    }
  }
  lines.push('\tdrop comment "lattice policy default deny"', '}');
  return lines;
}

function peerMatch(peer: PolicyPeerSpec, field: 'saddr' | 'daddr'): string {
  if ('set' in peer) return `ip ${field} @${peer.set}`;
  const except = peer.except.length ? ` ip ${field} != { ${peer.except.join(', ')} }` : '';
  return `ip ${field} ${peer.cidr}${except}`;
}

/**
 * One match per port entry ('' matches anything), except that the numbered ports of one
 * protocol are grouped into one anonymous set where the first of them appears, merged so
 * that overlapping ranges do not make nft refuse the set.
 */
function portMatches(ports: readonly PolicyPort[] | null): string[] {
  if (ports === null) return [''];
  const out = new Map<string, [number, number][] | null>();
  for (const p of ports) {
    if (p.protocol === 'any') out.set('', null);
    else if (p.protocol === 'icmp' || p.port === null) out.set(`meta l4proto ${p.protocol}`, null);
    else {
      const key = `${p.protocol} dport`;
      out.set(key, [...(out.get(key) ?? []), [p.port, p.endPort ?? p.port]]);
    }
  }
  return [...out].map(([match, ranges]) => {
    if (ranges === null) return match;
    const items = mergeRanges(ranges).map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`));
    return items.length === 1 ? `${match} ${items[0]}` : `${match} { ${items.join(', ')} }`;
  });
}

function mergeRanges(ranges: readonly [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [lo, hi] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** nft comments are quoted strings of at most 128 characters. */
function nftComment(text: string): string {
  return text
    .replace(/"/g, "'")
    .replace(/[^\x20-\x7e]|\\/g, '_')
    .slice(0, 128);
}

/** BIRD symbol for a peer's protocol: `peer_192_0_2_12`. */
export function birdPeerName(address: string): string {
  return `peer_${address.replace(/[^0-9a-zA-Z]/g, '_')}`;
}

/**
 * The BIRD 2 configuration of the host's speaker (DATAPLANE §5). Timers are short on
 * purpose: with BIRD's defaults routes take 4–8 s to appear, with these ≈ 1 s.
 *
 * Locally originated routes come from `protocol direct` on the block bridges (and the
 * uplink, for floating IPs held here) and are
 * exported only when they are one of the `announce` blocks. A route reflector must also
 * pass on what it learned over BGP (reflection is an export); other speakers never
 * re-export BGP routes, so every speaker announces exactly its own blocks.
 */
export function renderBirdConfig(s: BgpSpec): string {
  const announce = `[ ${s.announce.join(', ')} ]`;
  const lines = [
    '# Lattice BGP speaker. Generated by the agent: every change overwrites this file.',
    `router id ${s.routerId};`,
    '',
    `define LATTICE_ANNOUNCE = ${announce};`,
    '',
    'protocol device {',
    '  scan time 1;',
    '}',
    '',
  ];
  // Floating IPs held here are /32 addresses on the uplink: the same direct protocol
  // originates them, and the import filter keeps the uplink's own subnet out.
  const direct = s.uplink ? [...s.interfaces, s.uplink] : s.interfaces;
  if (direct.length > 0) {
    lines.push(
      'protocol direct lattice_blocks {',
      '  ipv4 { import where net ~ LATTICE_ANNOUNCE; };',
      `  interface ${direct.map((i) => `"${i}"`).join(', ')};`,
      '}',
      '',
    );
  }
  lines.push(
    'protocol kernel {',
    '  ipv4 { import none; export where source = RTS_BGP; };',
    '}',
    '',
    'filter lattice_export {',
    ...(s.routeReflector ? ['  if source = RTS_BGP then accept;'] : []),
    '  if source = RTS_DEVICE && net ~ LATTICE_ANNOUNCE then accept;',
    '  reject;',
    '}',
  );
  for (const p of s.peers) {
    lines.push(
      '',
      `protocol bgp ${birdPeerName(p.address)} {`,
      `  local ${s.routerId} as ${s.asn};`,
      `  neighbor ${p.address} as ${p.asn};`,
      // The underlay is one shared L2 segment: without `direct` BIRD treats iBGP peers as
      // multihop and resolves next hops through IGP routes that do not exist.
      '  direct;',
      ...(p.rrClient ? ['  rr client;'] : []),
      '  connect delay time 1;',
      '  keepalive time 3;',
      '  ipv4 { import all; export filter lattice_export; };',
      '}',
    );
  }
  return lines.join('\n') + '\n';
}
