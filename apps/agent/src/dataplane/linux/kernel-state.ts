/**
 * The kernel as read back (`ip -j -d link`, `ip -j addr`, `ip -j route`, `ip -j neigh`,
 * `bridge -j fdb`, sysctls, instance namespaces) and its pure comparison with the desired
 * resources: what to re-apply (with which `op`) and which owned objects are stale.
 *
 * Objects the kernel makes by itself are never drift: link-local addresses, `proto kernel`
 * connected routes, BIRD's routes, non-permanent neighbours, and the `permanent` FDB
 * entries of devices' own and multicast MACs.
 */
import type { UpsertOp } from '../../../../../libs/engine/src/diff.js';
import {
  deviceOf,
  devicesReferenced,
  KIND_ORDER,
  resource,
  type PortFlags,
  type Resource,
  type ResourceOf,
} from '../../../../../libs/engine/src/resources.js';
import { diffPortInstance, instanceNetns } from './ports.js';
import {
  DEFAULT_PORT_FLAGS,
  FIP_LABEL_SUFFIX,
  isOwned,
  renderDelete,
  ROUTE_PROTOCOL,
  ZERO_MAC,
  type RenderContext,
  type Step,
} from './render.js';

export interface LinkJson {
  readonly ifname: string;
  readonly mtu?: number;
  readonly flags?: readonly string[];
  readonly master?: string;
  readonly address?: string;
  readonly link_netnsid?: number;
  readonly linkinfo?: {
    readonly info_kind?: string;
    readonly info_data?: Record<string, unknown>;
    readonly info_slave_kind?: string;
    readonly info_slave_data?: Record<string, unknown>;
  };
}

export interface AddrJson {
  readonly ifname: string;
  readonly addr_info?: readonly {
    family: string;
    local: string;
    prefixlen: number;
    scope?: string;
    /** IPv4 only: the device name, or the label given (`<dev>:lt` for floating IPs). */
    label?: string;
  }[];
}

export interface RouteJson {
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
  readonly protocol?: string;
  readonly flags?: readonly string[];
}

export interface NeighJson {
  readonly dst: string;
  readonly dev: string;
  readonly lladdr?: string;
  readonly state?: readonly string[];
}

export interface FdbJson {
  readonly mac: string;
  readonly ifname: string;
  readonly dst?: string;
  readonly master?: string;
  readonly flags?: readonly string[];
  readonly state?: string;
}

/** An instance namespace read back with `INSTANCE_READ_LINES` (null: unreadable). */
export interface InstanceJson {
  readonly addrs: Parameters<typeof diffPortInstance>[1];
  readonly routes: Parameters<typeof diffPortInstance>[2];
}

export interface KernelSnapshot {
  readonly links: ReadonlyMap<string, LinkJson>;
  readonly addrs: readonly AddrJson[];
  readonly routes: readonly RouteJson[];
  readonly neighs: readonly NeighJson[];
  readonly fdb: readonly FdbJson[];
  readonly namespaces: ReadonlySet<string>;
  /** `ip netns list-id` of the host namespace: peer namespaces of veths by nsid. */
  readonly nsids: ReadonlyMap<number, string>;
  /** Values of the desired sysctls, whitespace-normalised. */
  readonly sysctls: ReadonlyMap<string, string>;
  /** Instance namespaces of desired ports, by namespace name. */
  readonly instances: ReadonlyMap<string, InstanceJson | null>;
}

/** A desired resource that the kernel does not hold as specified. */
export interface Repair {
  readonly resource: Resource;
  readonly op: UpsertOp;
  readonly message: string;
}

/** An owned kernel object that no resource wants, and how to remove it. */
export interface Stale {
  readonly key: string;
  readonly message: string;
  readonly steps: readonly Step[];
}

export interface Comparison {
  readonly repairs: readonly Repair[];
  readonly stale: readonly Stale[];
}

/** Device kinds the agent creates: only those are garbage-collected by prefix. */
const OWNED_KINDS: Readonly<Record<string, string>> = {
  bridge: 'bridge',
  vxlan: 'vxlan',
  veth: 'port',
  vlan: 'uplink',
  ipip: 'tunnel',
  gre: 'tunnel',
};

export const renderContextOf = (snap: KernelSnapshot, prefix: string): RenderContext => ({
  instanceNetnsPrefix: prefix,
  links: new Set(snap.links.keys()),
  namespaces: snap.namespaces,
});

/** `ip -j route` prints host routes without a prefix length. */
export function normaliseDst(dst: string): string {
  if (dst === 'default' || dst.includes('/')) return dst;
  return dst.includes(':') ? `${dst}/128` : `${dst}/32`;
}

const lower = (s: string | undefined) => (s ?? '').toLowerCase();

function flagsDiff(link: LinkJson, want: PortFlags | null): string[] {
  const d = link.linkinfo?.info_slave_data;
  if (link.linkinfo?.info_slave_kind !== 'bridge' || !d) return ['not a bridge port'];
  const f = want ?? DEFAULT_PORT_FLAGS;
  const pairs: [string, boolean][] = [
    ['learning', f.learning],
    ['flood', f.flood],
    ['mcast_flood', f.mcastFlood],
    ['bcast_flood', f.bcastFlood],
    ['neigh_suppress', f.neighSuppress],
  ];
  return pairs.filter(([k, v]) => d[k] !== undefined && d[k] !== v).map(([k, v]) => `${k} != ${v}`);
}

/** Common link checks: enslaved to `master`, MTU, administratively up. */
function linkDiff(link: LinkJson, want: { master?: string; mtu?: number }): string[] {
  const out: string[] = [];
  if (want.master !== undefined && link.master !== want.master) {
    out.push(`master ${link.master ?? 'none'} != ${want.master}`);
  }
  if (want.mtu !== undefined && link.mtu !== want.mtu) out.push(`mtu ${link.mtu} != ${want.mtu}`);
  if (!link.flags?.includes('UP')) out.push('down');
  return out;
}

/** Attributes the kernel cannot change in place: a difference means delete and re-create. */
function vxlanImmutableDiff(link: LinkJson, r: ResourceOf<'vxlan'>): string[] {
  const s = r.spec;
  const d = link.linkinfo?.info_data ?? {};
  if (link.linkinfo?.info_kind !== 'vxlan') return [`kind ${link.linkinfo?.info_kind} != vxlan`];
  const pairs: [string, unknown, unknown][] = [
    ['vni', d.id, s.vni],
    ['local', d.local, s.local],
    ['dstport', d.port, s.dstport],
    ['dev', d.link, s.dev],
    // iproute2 prints some booleans only when set.
    ['learning', d.learning ?? false, s.learning],
    ['proxy', d.proxy ?? false, s.proxy],
  ];
  return pairs
    .filter(([, a, b]) => a !== b)
    .map(([k, a, b]) => `${k} ${String(a)} != ${String(b)}`);
}

/**
 * A learning bridge that holds the MAC of a local instance on another port (learned from
 * frames the instance sent while it lived on another host, e.g. still arriving after a
 * move) sends frames for it back where they came from until the instance speaks again.
 */
function misplacedMac(snap: KernelSnapshot, s: ResourceOf<'port'>['spec']): string[] {
  if (s.flags?.learning === false) return [];
  const mac = lower(s.mac);
  const e = snap.fdb.find(
    (x) => x.master === s.bridge && lower(x.mac) === mac && x.state !== 'permanent',
  );
  return e && e.ifname !== s.veth ? [`bridge has ${s.mac} on ${e.ifname}`] : [];
}

function hasAddress(snap: KernelSnapshot, dev: string, ip: string, plen: string): boolean {
  return (
    snap.addrs
      .find((a) => a.ifname === dev)
      ?.addr_info?.some((a) => a.local === ip && String(a.prefixlen) === plen) ?? false
  );
}

function diffResource(r: Resource, snap: KernelSnapshot, prefix: string): Repair | null {
  const repair = (op: UpsertOp, what: readonly string[]): Repair | null =>
    what.length === 0 ? null : { resource: r, op, message: what.join('; ') };
  const missing = (what: string): Repair => ({ resource: r, op: 'create', message: what });
  switch (r.kind) {
    case 'sysctl': {
      const v = snap.sysctls.get(r.spec.name);
      return v === r.spec.value.trim().replace(/\s+/g, ' ')
        ? null
        : repair('update', [`${r.spec.name} = ${v ?? '?'} != ${r.spec.value}`]);
    }
    case 'bridge': {
      const l = snap.links.get(r.spec.name);
      if (!l) return missing(`bridge ${r.spec.name} missing`);
      if (l.linkinfo?.info_kind !== undefined && l.linkinfo.info_kind !== 'bridge') {
        return repair('replace', [`${r.spec.name} is a ${l.linkinfo.info_kind}`]);
      }
      const d = linkDiff(l, { mtu: r.spec.mtu });
      if (r.spec.mac && lower(l.address) !== lower(r.spec.mac)) {
        d.push(`address ${l.address} != ${r.spec.mac}`);
      }
      return repair('update', d);
    }
    case 'uplink': {
      const l = snap.links.get(r.spec.name);
      if (!l) return missing(`uplink ${r.spec.name} missing`);
      return repair('update', [
        ...linkDiff(l, { master: r.spec.master }),
        ...(l.master === r.spec.master ? flagsDiff(l, r.spec.flags) : []),
      ]);
    }
    case 'vxlan': {
      const l = snap.links.get(r.spec.name);
      if (!l) return missing(`vxlan ${r.spec.name} missing`);
      const immutable = vxlanImmutableDiff(l, r);
      if (immutable.length) return repair('replace', immutable);
      return repair('update', [
        ...linkDiff(l, { master: r.spec.master, mtu: r.spec.mtu }),
        ...(l.master === r.spec.master ? flagsDiff(l, r.spec.flags) : []),
      ]);
    }
    case 'tunnel': {
      const l = snap.links.get(r.spec.name);
      if (!l) return missing(`tunnel ${r.spec.name} missing`);
      const kind = l.linkinfo?.info_kind;
      const local = l.linkinfo?.info_data?.local;
      if (kind !== r.spec.mode) return repair('replace', [`kind ${kind} != ${r.spec.mode}`]);
      if (typeof local === 'string' && local !== r.spec.local) {
        return repair('replace', [`local ${local} != ${r.spec.local}`]);
      }
      return repair('update', linkDiff(l, {}));
    }
    case 'port': {
      const s = r.spec;
      const l = snap.links.get(s.veth);
      if (!l) return missing(`veth ${s.veth} missing`);
      const ns = instanceNetns(prefix, s);
      const instance = snap.instances.get(ns);
      return repair('update', [
        ...linkDiff(l, { master: s.bridge, mtu: s.mtu }),
        ...(l.master === s.bridge ? flagsDiff(l, s.flags) : []),
        ...misplacedMac(snap, s),
        ...(instance
          ? diffPortInstance(s, instance.addrs, instance.routes).map((m) => `${ns}: ${m}`)
          : [`instance namespace ${ns} unreadable`]),
      ]);
    }
    case 'address': {
      const [ip, plen] = r.spec.address.split('/');
      return hasAddress(snap, r.spec.dev, ip, plen)
        ? null
        : missing(`address ${r.spec.address} missing on ${r.spec.dev}`);
    }
    case 'fip':
      return hasAddress(snap, r.spec.dev, r.spec.address, '32')
        ? null
        : missing(`floating IP ${r.spec.address} missing on ${r.spec.dev}`);
    case 'route': {
      const s = r.spec;
      const dst = normaliseDst(s.dst);
      const found = snap.routes.find((x) => normaliseDst(x.dst) === dst);
      if (!found) return missing(`route ${s.dst} missing`);
      const d: string[] = [];
      if (found.gateway !== s.via) d.push(`via ${found.gateway ?? 'none'} != ${s.via}`);
      if (s.dev !== null && found.dev !== s.dev) d.push(`dev ${found.dev} != ${s.dev}`);
      if (s.onlink && !found.flags?.includes('onlink')) d.push('not onlink');
      if (found.protocol !== String(ROUTE_PROTOCOL)) d.push(`protocol ${found.protocol}`);
      return repair('update', d);
    }
    case 'neigh': {
      const s = r.spec;
      const n = snap.neighs.find((x) => x.dst === s.ip && x.dev === s.dev);
      if (!n) return missing(`neighbour ${s.ip} missing on ${s.dev}`);
      const d: string[] = [];
      if (lower(n.lladdr) !== lower(s.lladdr)) d.push(`lladdr ${n.lladdr} != ${s.lladdr}`);
      if (!n.state?.includes('PERMANENT')) d.push(`state ${n.state?.join(',')}`);
      return repair('update', d);
    }
    case 'fdb': {
      const s = r.spec;
      const mac = lower(s.mac);
      const d: string[] = [];
      const entries = snap.fdb.filter((e) => e.ifname === s.dev && lower(e.mac) === mac);
      if (s.dst !== null && !entries.some((e) => e.dst === s.dst && !e.master)) {
        d.push(`${s.mac} dst ${s.dst} missing on ${s.dev}`);
      }
      if (s.master && !entries.some((e) => e.master && e.state === 'static')) {
        d.push(`static ${s.mac} missing in the bridge table on ${s.dev}`);
      }
      return d.length ? missing(d.join('; ')) : null;
    }
    case 'filter':
    case 'policy':
    case 'pmember':
    case 'netset':
    case 'bgp':
      // Whole-file resources: compared by the dataplane (nft table digest, BIRD config).
      return null;
  }
}

/**
 * Compares the desired resources with a kernel snapshot. `stale` lists owned objects that
 * no resource wants (the caller decides whether it may remove them yet).
 */
export function compareKernel(
  desired: readonly Resource[],
  snap: KernelSnapshot,
  instanceNetnsPrefix: string,
): Comparison {
  const repairs: Repair[] = [];
  for (const r of desired) {
    const d = diffResource(r, snap, instanceNetnsPrefix);
    if (d) repairs.push(d);
  }
  // Re-creating a device drops what lives on it (FDB, neighbours, routes, ports): re-apply
  // those too, as the engine's diff does for a `replace`.
  const replaced = new Set(
    repairs.flatMap((p) => (p.op === 'replace' ? [deviceOf(p.resource) ?? ''] : [])),
  );
  if (replaced.size > 0) {
    const queued = new Set(repairs.map((p) => p.resource.key));
    for (const r of desired) {
      if (queued.has(r.key) || !devicesReferenced(r).some((dev) => replaced.has(dev))) continue;
      repairs.push({ resource: r, op: 'update', message: 'its device is re-created' });
    }
    repairs.sort((a, b) => KIND_ORDER[a.resource.kind] - KIND_ORDER[b.resource.kind]);
  }
  return { repairs, stale: findStale(desired, snap, instanceNetnsPrefix) };
}

/** A floating IP address as the agent adds it: IPv4 `/32` labelled `<dev>:lt`. */
function isFloating(i: NonNullable<AddrJson['addr_info']>[number]): boolean {
  return (
    i.family === 'inet' && i.prefixlen === 32 && (i.label?.endsWith(FIP_LABEL_SUFFIX) ?? false)
  );
}

function findStale(desired: readonly Resource[], snap: KernelSnapshot, prefix: string): Stale[] {
  const ctx = renderContextOf(snap, prefix);
  const wantedDevices = new Set<string>();
  const wantedAddrs = new Set<string>();
  const wantedRoutes = new Set<string>();
  const wantedNeighs = new Set<string>();
  const wantedFdb = new Set<string>();
  const noLearning = new Set<string>();
  for (const r of desired) {
    switch (r.kind) {
      case 'bridge':
      case 'uplink':
      case 'vxlan':
      case 'tunnel':
        wantedDevices.add(r.spec.name);
        if (r.kind !== 'bridge' && r.kind !== 'tunnel' && r.spec.flags?.learning === false) {
          noLearning.add(r.spec.name);
        }
        break;
      case 'port':
        wantedDevices.add(r.spec.veth);
        if (r.spec.flags?.learning === false) noLearning.add(r.spec.veth);
        break;
      case 'address':
        wantedAddrs.add(`${r.spec.dev} ${r.spec.address}`);
        break;
      case 'fip':
        wantedAddrs.add(`${r.spec.dev} ${r.spec.address}/32`);
        break;
      case 'route':
        wantedRoutes.add(normaliseDst(r.spec.dst));
        break;
      case 'neigh':
        wantedNeighs.add(`${r.spec.dev} ${r.spec.ip}`);
        break;
      case 'fdb': {
        const mac = lower(r.spec.mac);
        if (r.spec.dst !== null) wantedFdb.add(`self ${r.spec.dev} ${mac} ${r.spec.dst}`);
        if (r.spec.master) wantedFdb.add(`master ${r.spec.dev} ${mac}`);
        break;
      }
      case 'sysctl':
      case 'bgp':
      // The nftables table is replaced as a whole: nothing of it is stale on its own.
      case 'filter':
      case 'policy':
      case 'pmember':
      case 'netset':
        break;
    }
  }
  const stale: Stale[] = [];
  const staleDevices = new Set<string>();
  for (const l of snap.links.values()) {
    const kind = OWNED_KINDS[l.linkinfo?.info_kind ?? ''];
    if (!kind || !isOwned(l.ifname) || wantedDevices.has(l.ifname)) continue;
    staleDevices.add(l.ifname);
    const steps: Step[] = [{ stage: 'ip', line: `link del ${l.ifname}` }];
    // A stale port leaves its instance namespace behind: remove it when it is one of ours.
    const peerNs = l.link_netnsid !== undefined ? snap.nsids.get(l.link_netnsid) : undefined;
    if (kind === 'port' && peerNs?.startsWith(`${prefix}-`)) {
      steps.push({ stage: 'netns', line: `netns del ${peerNs}` });
    }
    stale.push({ key: `${kind}:${l.ifname}`, message: `stale ${kind} ${l.ifname}`, steps });
  }
  const live = (dev: string) => isOwned(dev) && !staleDevices.has(dev);
  const add = (key: string, message: string, r: Resource) =>
    stale.push({ key, message, steps: renderDelete(r, ctx) });
  const desiredKeys = new Set(desired.map((r) => r.key));
  for (const a of snap.addrs) {
    if (staleDevices.has(a.ifname)) continue; // goes with its device
    for (const i of a.addr_info ?? []) {
      const address = `${i.local}/${i.prefixlen}`;
      if (wantedAddrs.has(`${a.ifname} ${address}`)) continue;
      if (isFloating(i)) {
        // Ours by its label, whatever the device (floating IPs live on the uplink).
        const r = resource('fip', {
          address: i.local,
          instance: '',
          name: '',
          network: '',
          bridge: '',
          ip: '',
          dev: a.ifname,
        });
        // A floating IP left on another device than the one it is wanted on.
        const key = desiredKeys.has(r.key) ? `${r.key}:${a.ifname}` : r.key;
        add(key, `stale floating IP ${i.local} on ${a.ifname}`, r);
        continue;
      }
      if (!live(a.ifname) || i.scope === 'link' || i.scope === 'host') continue;
      const r = resource('address', { dev: a.ifname, address });
      add(r.key, `stale address ${address} on ${a.ifname}`, r);
    }
  }
  for (const x of snap.routes) {
    // Ours by protocol number, whatever the device (host-gw routes go via the underlay).
    if (x.protocol !== String(ROUTE_PROTOCOL) || wantedRoutes.has(normaliseDst(x.dst))) continue;
    const r = resource('route', { dst: x.dst, via: x.gateway ?? '', dev: null, onlink: false });
    add(r.key, `stale route ${x.dst}`, r);
  }
  for (const n of snap.neighs) {
    if (!live(n.dev) || !n.state?.includes('PERMANENT')) continue;
    if (wantedNeighs.has(`${n.dev} ${n.dst}`)) continue;
    const r = resource('neigh', { dev: n.dev, ip: n.dst, lladdr: n.lladdr ?? '' });
    add(r.key, `stale neighbour ${n.dst} on ${n.dev}`, r);
  }
  for (const e of snap.fdb) {
    if (!live(e.ifname)) continue;
    const mac = lower(e.mac);
    if (e.dst !== undefined && !e.master) {
      if (wantedFdb.has(`self ${e.ifname} ${mac} ${e.dst}`)) continue;
      const r = resource('fdb', { dev: e.ifname, mac, dst: e.dst, master: false });
      add(mac === ZERO_MAC ? r.key : `${r.key}:${e.dst}`, `stale fdb ${mac} dst ${e.dst}`, r);
    } else if (e.master && e.state === 'static') {
      if (wantedFdb.has(`master ${e.ifname} ${mac}`)) continue;
      const r = resource('fdb', { dev: e.ifname, mac, dst: null, master: true });
      add(r.key, `stale static fdb ${mac} on ${e.ifname}`, r);
    } else if (e.master && e.state !== 'permanent' && noLearning.has(e.ifname)) {
      // Learning is off on fabric ports: a learned entry means someone turned it on, and
      // it would shadow the pushed forwarding information.
      const r = resource('fdb', { dev: e.ifname, mac, dst: null, master: true });
      add(`${r.key}:learned`, `learned fdb ${mac} on fabric port ${e.ifname}`, r);
    }
  }
  return stale;
}
