/**
 * The engine's intermediate node: one network's share of one host's desired state, and the
 * interning table that stores resources many hosts hold (a remote instance's FDB and
 * neighbour entries, routes to a block, a network's bridge) once.
 */
import type { Host, Network } from '../../model/src/index.js';
import { jsonEquals } from './diff.js';
import { announceFloating, shareNeedsNetset } from './egress.js';
import { filterFor } from './isolation.js';
import {
  contribute,
  emitRemote,
  NetworkOnHost,
  type HostSink,
  type NetworkModelPlan,
  type NetworkView,
} from './models/model.js';
import { MODELS } from './models/registry.js';
import type { Resource, ResourceKind } from './resources.js';
import type { TopologyIndex } from './topology-index.js';

/**
 * Network N's share of host H: what `computeHost` emits for N on H (the model's resources
 * and N's isolation filter), and what N asks of H's host-wide resources. A host's state is
 * the union of its shares plus the host-wide sysctls and BGP speaker.
 */
export class Share {
  /** The share's resources by key (interned objects, also referenced by the host's state). */
  readonly resources = new Map<string, Resource>();
  /** The model asked for `net.ipv4.ip_forward` (HostSink.needForwarding). */
  forwarding = false;
  /** The network is attached to a router (gateway served here: forwarding, loose rp_filter). */
  routed = false;
  /** Egress or a floating IP: the host needs its netset (egress.ts). */
  netset = false;
  /** Blocks to announce over BGP → bridge carrying their gateway. */
  announced: ReadonlyMap<string, string> = NO_ANNOUNCEMENTS;
  /**
   * The last compute emitted one key twice (first wins): per-instance deltas cannot tell
   * which emitter a key belongs to, so instance changes recompute this share instead.
   */
  collided = false;

  constructor(readonly networkId: string) {}
}

const NO_ANNOUNCEMENTS: ReadonlyMap<string, string> = new Map();

/**
 * Collects a share's resources with the same first-wins rule as compute.ts' Sink. In `fast`
 * mode a key emitted twice is only noticed (the map's size does not grow) and the second
 * value has replaced the first: the caller then computes the share again in careful mode.
 * Keys are practically never emitted twice within one share, and one map operation per
 * resource instead of two is a good part of a full compute. The fast mode also keeps what
 * was added apart from the remote parts (`own`) and the parts, so that the engine interns
 * only the former.
 */
class ShareSink implements HostSink {
  forwarding = false;
  collided = false;
  announced: Map<string, string> | null = null;
  readonly own: Resource[] = [];
  readonly parts: RemotePart[] = [];

  constructor(
    readonly resources: Map<string, Resource>,
    private readonly fast: boolean,
  ) {}

  add(r: Resource): void {
    const m = this.resources;
    if (this.fast) {
      const n = m.size;
      if (m.set(r.key, r).size === n) this.collided = true;
      this.own.push(r);
    } else if (m.has(r.key)) this.collided = true;
    else m.set(r.key, r);
  }

  addPart(part: RemotePart): void {
    const m = this.resources;
    const rs = part.resources;
    if (!this.fast) {
      for (let i = 0; i < rs.length; i++) this.add(rs[i]);
      return;
    }
    let n = m.size;
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i];
      if (m.set(r.key, r).size === n) this.collided = true;
      else n++;
    }
    this.parts.push(part);
  }

  needForwarding(): void {
    this.forwarding = true;
  }
  announce(cidr: string, bridge: string): void {
    (this.announced ??= new Map()).set(cidr, bridge);
  }
}

/** What a computed share asks of its host, and whether it emitted a key twice. */
export interface ShareAsks {
  readonly forwarding: boolean;
  readonly routed: boolean;
  readonly netset: boolean;
  readonly announced: ReadonlyMap<string, string>;
  readonly collided: boolean;
  /**
   * When no key was emitted twice: the resources apart from the remote parts, and the parts
   * (together exactly the share's resources, in no particular order).
   */
  readonly split: {
    readonly own: readonly Resource[];
    readonly parts: readonly RemotePart[];
  } | null;
}

/**
 * Computes network's share of host from scratch into `into` (empty): the body of
 * computeHost's per-network loop. `presentOnHost` is the set of networks the host holds
 * state for (the filter accepts the peers among them). The filter is emitted when the share
 * has the network's bridge (in computeHost: when the host's state has that bridge so far,
 * which is the same thing unless two networks' 40-bit bridge name hashes collide).
 * `remote`, when given, supplies the remote hosts' parts computed once for all shares.
 */
export function computeShare(
  ix: TopologyIndex,
  host: Host,
  network: Network,
  presentOnHost: ReadonlySet<string>,
  into: Map<string, Resource>,
  remote?: RemoteParts | null,
): ShareAsks {
  const ctx = new NetworkOnHost(ix, host, network);
  const plan = MODELS[network.model];
  const partOf = remote?.of(plan, ctx);
  let sink = new ShareSink(into, true);
  const addPart = partOf && ((owner: Host) => sink.addPart(partOf(owner)));
  contribute(plan, ctx, sink, addPart);
  let f: Resource | null = null;
  const filter = () => {
    f = shareFilter(ix, host, network, ctx.bridge, into, presentOnHost);
    if (f) sink.add(f);
  };
  filter();
  if (sink.collided) {
    into.clear();
    sink = new ShareSink(into, false);
    contribute(plan, ctx, sink, addPart);
    filter();
  }
  const floating = announceFloating(ctx, sink);
  return {
    forwarding: sink.forwarding,
    routed: ctx.routed,
    netset: shareNeedsNetset(f, floating),
    announced: sink.announced ?? NO_ANNOUNCEMENTS,
    collided: sink.collided,
    split: sink.collided ? null : { own: sink.own, parts: sink.parts },
  };
}

/** What one remote host adds to the shares of a network (see RemoteParts). */
export interface RemotePart {
  /** When `pinned`, canonical objects (the interned ones where an equal one was held). */
  readonly resources: readonly Resource[];
  /** Their interning slots, when the parts are `pinned` (nothing is released meanwhile). */
  readonly slots: readonly Slot[] | null;
}

/**
 * What each remote host adds to the shares of a network (`emitRemote`: flood entry, routes,
 * its instances' FDB and neighbour entries), computed once per (network, remote host, uplink
 * name) for every host that holds it. Valid while the index does not change: the engine
 * makes one per compute phase (the full compute, the recomputes at the end of an apply).
 * `pinned` (the full compute, which releases nothing): the parts' resources are put in the
 * interning table when the part is made (canonical objects), and the engine counts a share's
 * references to them with `Interner.retain(part)` instead of interning each, so the shares
 * of all k hosts reference one object per resource at the cost of a counter per part.
 * Otherwise the parts are emitted once and interned per share as any other resource.
 */
export class RemoteParts {
  private readonly byNetwork = new Map<string, Map<string, Map<string, RemotePart>>>();
  private readonly made: RemotePart[] = [];

  constructor(
    private readonly interner: Interner,
    private readonly pinned: boolean,
  ) {}

  /** The remote parts of `view`'s network as seen from hosts with `view`'s uplink. */
  of(plan: NetworkModelPlan, view: NetworkView): (owner: Host) => RemotePart {
    let byUplink = this.byNetwork.get(view.network.id);
    if (!byUplink)
      this.byNetwork.set(view.network.id, (byUplink = new Map<string, Map<string, RemotePart>>()));
    let byOwner = byUplink.get(view.uplink);
    if (!byOwner) byUplink.set(view.uplink, (byOwner = new Map<string, RemotePart>()));
    const parts = byOwner;
    return (owner) => {
      let part = parts.get(owner.id);
      if (!part) {
        const sink = new ListSink();
        emitRemote(plan, view, owner, sink);
        const rs = sink.resources;
        let slots: Slot[] | null = null;
        if (this.pinned) {
          slots = [];
          for (let i = 0; i < rs.length; i++) {
            const slot = this.interner.pin(rs[i]);
            if (slot) {
              rs[i] = slot.r;
              slots.push(slot);
            }
          }
        }
        parts.set(owner.id, (part = { resources: rs, slots }));
        if (this.pinned) this.made.push(part);
      }
      return part;
    };
  }

  /** Ends the phase: slots pinned for parts that no share took are dropped. */
  finish(): void {
    for (const p of this.made) for (const s of p.slots!) if (s.refs === 0) this.interner.drop(s);
  }
}

/** The isolation filter of a share holding `resources`, or null when it has no bridge. */
export function shareFilter(
  ix: TopologyIndex,
  host: Host,
  network: Network,
  bridge: string,
  resources: ReadonlyMap<string, Resource>,
  presentOnHost: ReadonlySet<string>,
): Resource | null {
  return resources.has(`bridge:${bridge}`)
    ? filterFor(ix, host, network, bridge, presentOnHost)
    : null;
}

/** Collects what a per-instance / per-remote-host model method emits. */
export class ListSink implements HostSink {
  readonly resources: Resource[] = [];
  add(r: Resource): void {
    this.resources.push(r);
  }
  needForwarding(): void {}
  announce(): void {}
}

/**
 * Kinds whose resources are usually identical on many hosts: a remote instance's FDB and
 * neighbour entries (on all k hosts of its network), routes to a block, a network's bridge,
 * gateway address and filter. Ports, devices with a `local` address and host-wide resources
 * are per host and are not worth a table entry.
 */
const INTERNED: ReadonlySet<ResourceKind> = new Set<ResourceKind>([
  'fdb',
  'neigh',
  'route',
  'bridge',
  'address',
  'filter',
]);

export interface Slot {
  readonly r: Resource;
  refs: number;
  next: Slot | null;
}

/**
 * Reference-counted interning: equal resources held by several hosts' shares are one object.
 * Variants of one key (during a move, the old and new FDB entry) are chained.
 */
export class Interner {
  private readonly table = new Map<string, Slot>();

  intern(r: Resource): Resource {
    if (!INTERNED.has(r.kind)) return r;
    const head = this.table.get(r.key);
    for (let s: Slot | null | undefined = head; s; s = s.next) {
      if (s.r === r || jsonEquals(s.r.spec, r.spec)) {
        s.refs++;
        return s.r;
      }
    }
    this.table.set(r.key, { r, refs: 1, next: head ?? null });
    return r;
  }

  /**
   * The slot of the interned resource equal to `r`, added without references when there is
   * none (null for kinds that are not interned). See RemoteParts.
   */
  pin(r: Resource): Slot | null {
    if (!INTERNED.has(r.kind)) return null;
    const head = this.table.get(r.key);
    for (let s: Slot | null | undefined = head; s; s = s.next) {
      if (s.r === r || jsonEquals(s.r.spec, r.spec)) return s;
    }
    const slot = { r, refs: 0, next: head ?? null };
    this.table.set(r.key, slot);
    return slot;
  }

  /** One more share holds each of the part's resources (pinned parts only). */
  retain(part: RemotePart): void {
    for (const s of part.slots!) s.refs++;
  }

  /** Removes a pinned slot that nothing holds. */
  drop(slot: Slot): void {
    if (slot.refs > 0) return;
    slot.refs = 1;
    this.release(slot.r);
  }

  release(r: Resource): void {
    if (!INTERNED.has(r.kind)) return;
    let prev: Slot | null = null;
    for (let s: Slot | null | undefined = this.table.get(r.key); s; prev = s, s = s.next) {
      if (s.r !== r) continue;
      if (--s.refs > 0) return;
      if (prev) prev.next = s.next;
      else if (s.next) this.table.set(r.key, s.next);
      else this.table.delete(r.key);
      return;
    }
  }

  /** Distinct interned keys. */
  get size(): number {
    return this.table.size;
  }
}
