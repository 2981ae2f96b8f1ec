/**
 * Network policy → per-host resources (issue 12). One pure definition used by the reference
 * compute (`computeHost`), the incremental engine's policy layer, the preview and the
 * trace, so they cannot disagree.
 *
 * For each instance on a host that some policy selects, one `policy` resource (its chains)
 * on that host; for each peer set those chains name, one `pmember` resource per member
 * address on that host. A selector peer becomes a *set* per (peer, network N of the
 * selected instance): the instances matching the peer in reach(N) = N and the networks
 * sharing a router with N — the only networks whose traffic can reach an instance of N.
 * Within reach(N) addresses are unique (routable networks never overlap; an isolated
 * network has no router peers), so an address set is exact even where isolated networks
 * reuse one subnet.
 */
import {
  canonicalSelector,
  isCidrPeer,
  policySelects,
  matchesSelector,
  type Instance,
  type Policy,
  type PolicyDirection,
  type PolicyRule,
  type SelectorPeer,
} from '../../../model/src/index.js';
import { bridgeName, shortHash, vethName } from '../names.js';
import {
  resource,
  type PolicyPeerSpec,
  type PolicyRuleSpec,
  type Resource,
  type ResourceOf,
} from '../resources.js';
import type { TopologyIndex } from '../topology-index.js';

/** A selector peer as seen from instances of network `network`. */
export interface PeerSet {
  readonly name: string;
  readonly peer: SelectorPeer;
  /** N: the network of the instances whose chains use the set. */
  readonly network: string;
}

/**
 * The nftables name of a peer set: `ps_` + 12 hex digits of a hash of the canonical peer
 * and N (48 bits: a collision among 10,000 sets on one host has a chance of ~2e-7).
 */
export function peerSetOf(peer: SelectorPeer, network: string): PeerSet {
  const key = `${canonicalSelector(peer.selector)}|${[...peer.networkIds].sort().join(',')}|${network}`;
  return { name: `ps_${shortHash(key, 12)}`, peer, network };
}

/** reach(N): N and the existing networks that share a router with it. */
export function reachOf(ix: TopologyIndex, network: string): string[] {
  return [network, ...ix.peers(network)];
}

/** The set's members now: matching instances of reach(N) (∩ the peer's networks). */
export function setMembers(ix: TopologyIndex, set: PeerSet): Instance[] {
  if (!ix.networks.has(set.network)) return [];
  const ids = set.peer.networkIds;
  const out: Instance[] = [];
  for (const n of reachOf(ix, set.network)) {
    if (ids.length > 0 && !ids.includes(n)) continue;
    for (const i of ix.instancesOfNetwork(n)) {
      if (matchesSelector(set.peer.selector, i.labels)) out.push(i);
    }
  }
  return out;
}

export function memberResource(set: string, address: string): ResourceOf<'pmember'> {
  return resource('pmember', { set, address });
}

/** Policies selecting an instance, by name then id (the order of their rules in a chain). */
export function selectingPolicies(
  policies: Iterable<Policy>,
  inst: Pick<Instance, 'networkId' | 'labels'>,
): Policy[] {
  const out: Policy[] = [];
  for (const p of policies) if (policySelects(p, inst.networkId, inst.labels)) out.push(p);
  return out.sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
  );
}

function ruleSpecs(
  selecting: readonly Policy[],
  dir: PolicyDirection,
  network: string,
  sets: Map<string, PeerSet>,
): PolicyRuleSpec[] | null {
  let out: PolicyRuleSpec[] | null = null;
  for (const p of selecting) {
    const rules: readonly PolicyRule[] | null = p[dir];
    if (rules === null) continue;
    out ??= [];
    rules.forEach((rule, index) => {
      const peers: PolicyPeerSpec[] | null =
        rule.peers.length === 0
          ? null
          : rule.peers.map((peer) => {
              if (isCidrPeer(peer)) return { cidr: peer.cidr, except: [...peer.except] };
              const set = peerSetOf(peer, network);
              sets.set(set.name, set);
              return { set: set.name };
            });
      out!.push({
        policy: p.name,
        policyId: p.id,
        rule: index,
        peers,
        ports: rule.ports.length === 0 ? null : rule.ports,
      });
    });
  }
  return out;
}

/**
 * An instance's `policy` resource and the peer sets it names, or null when no policy selects
 * it (or its network is gone: it has no port to guard).
 */
export function instancePolicy(
  ix: TopologyIndex,
  inst: Instance,
): { resource: ResourceOf<'policy'>; sets: Map<string, PeerSet> } | null {
  if (ix.policies.size === 0 || !ix.networks.has(inst.networkId) || !ix.hosts.has(inst.hostId))
    return null;
  const selecting = selectingPolicies(ix.policies.values(), inst);
  if (selecting.length === 0) return null;
  const sets = new Map<string, PeerSet>();
  const ingress = ruleSpecs(selecting, 'ingress', inst.networkId, sets);
  const egress = ruleSpecs(selecting, 'egress', inst.networkId, sets);
  if (ingress === null && egress === null) return null;
  return {
    resource: resource('policy', {
      instance: inst.id,
      name: inst.name,
      network: inst.networkId,
      bridge: bridgeName(inst.networkId),
      veth: vethName(inst.id),
      address: inst.ip,
      ingress,
      egress,
    }),
    sets,
  };
}

/** The reference: every policy resource of a host (instances' chains and their sets' members). */
export function policyResources(ix: TopologyIndex, hostId: string): Resource[] {
  if (ix.policies.size === 0 || !ix.hosts.has(hostId)) return [];
  const out: Resource[] = [];
  const sets = new Map<string, PeerSet>();
  for (const n of ix.localNetworks(hostId)) {
    for (const inst of ix.instancesOn(n, hostId)) {
      const p = instancePolicy(ix, inst);
      if (!p) continue;
      out.push(p.resource);
      for (const [name, s] of p.sets) sets.set(name, s);
    }
  }
  for (const s of sets.values()) {
    for (const m of setMembers(ix, s)) out.push(memberResource(s.name, m.ip));
  }
  return out;
}
