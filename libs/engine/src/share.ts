/**
 * The engine's intermediate node: one network's share of one host's desired state, and the
 * interning table that stores resources many hosts hold (a remote instance's FDB and
 * neighbour entries, routes to a block, a network's bridge) once.
 */
import type { Host, Network } from '../../model/src/index.js';
import { jsonEquals } from './diff.js';
import { filterFor } from './isolation.js';
import { NetworkOnHost, type HostSink } from './models/model.js';
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

/** Collects a share's resources with the same first-wins rule as compute.ts' Sink. */
class ShareSink implements HostSink {
  readonly resources = new Map<string, Resource>();
  forwarding = false;
  collided = false;
  announced: Map<string, string> | null = null;

  add(r: Resource): void {
    if (this.resources.has(r.key)) this.collided = true;
    else this.resources.set(r.key, r);
  }
  needForwarding(): void {
    this.forwarding = true;
  }
  announce(cidr: string, bridge: string): void {
    (this.announced ??= new Map()).set(cidr, bridge);
  }
}

export interface ShareContent {
  readonly resources: ReadonlyMap<string, Resource>;
  readonly forwarding: boolean;
  readonly routed: boolean;
  readonly announced: ReadonlyMap<string, string>;
  readonly collided: boolean;
}

/**
 * Computes network's share of host from scratch: the body of computeHost's per-network loop.
 * `presentOnHost` is the set of networks the host holds state for (the filter accepts the
 * peers among them). The filter is emitted when the share has the network's bridge (in
 * computeHost: when the host's state has that bridge so far, which is the same thing unless
 * two networks' 40-bit bridge name hashes collide).
 */
export function computeShare(
  ix: TopologyIndex,
  host: Host,
  network: Network,
  presentOnHost: ReadonlySet<string>,
): ShareContent {
  const sink = new ShareSink();
  const ctx = new NetworkOnHost(ix, host, network);
  MODELS[network.model].contribute(ctx, sink);
  const filter = shareFilter(ix, network, ctx.bridge, sink.resources, presentOnHost);
  if (filter) sink.add(filter);
  return {
    resources: sink.resources,
    forwarding: sink.forwarding,
    routed: ctx.routed,
    announced: sink.announced ?? NO_ANNOUNCEMENTS,
    collided: sink.collided,
  };
}

/** The isolation filter of a share holding `resources`, or null when it has no bridge. */
export function shareFilter(
  ix: TopologyIndex,
  network: Network,
  bridge: string,
  resources: ReadonlyMap<string, Resource>,
  presentOnHost: ReadonlySet<string>,
): Resource | null {
  return resources.has(`bridge:${bridge}`) ? filterFor(ix, network, bridge, presentOnHost) : null;
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

interface Slot {
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
