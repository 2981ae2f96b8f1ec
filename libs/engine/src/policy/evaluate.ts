/**
 * What a `policy` resource's chains allow, evaluated exactly as the agent renders them
 * (resources.ts PolicySpec): the trace asks about one packet, the preview about every
 * protocol and port at once (a `PortSpace`).
 */
import { cidrContains } from '../../../model/src/index.js';
import type { PolicyPort } from '../../../model/src/index.js';
import type { PolicyPeerSpec, PolicyRuleSpec } from '../resources.js';

/** A protocol and destination port range ('other': protocols but tcp, udp and icmp). */
export interface FlowPorts {
  readonly protocol: 'tcp' | 'udp' | 'icmp' | 'other' | 'any';
  /** tcp/udp only: the range `[port, endPort]`; null: every port. */
  readonly port: number | null;
  readonly endPort: number | null;
}

/** Is `address` a member of set `set`? */
export type InSet = (set: string, address: string) => boolean;

type Range = readonly [number, number];

/** Sets of (protocol, destination port): tcp/udp port ranges, icmp, and every other protocol. */
export interface PortSpace {
  readonly tcp: readonly Range[];
  readonly udp: readonly Range[];
  readonly icmp: boolean;
  readonly other: boolean;
}

const ALL_PORTS: readonly Range[] = [[0, 65535]];
export const ALL: PortSpace = { tcp: ALL_PORTS, udp: ALL_PORTS, icmp: true, other: true };
export const NONE: PortSpace = { tcp: [], udp: [], icmp: false, other: false };

export function peerMatches(p: PolicyPeerSpec, address: string, inSet: InSet): boolean {
  if ('set' in p) return inSet(p.set, address);
  return cidrContains(p.cidr, address) && !p.except.some((e) => cidrContains(e, address));
}

function portSpace(p: PolicyPort): PortSpace {
  const range: readonly Range[] =
    p.port === null ? ALL_PORTS : [[p.port, p.endPort ?? p.port] as const];
  switch (p.protocol) {
    case 'any':
      return ALL;
    case 'icmp':
      return { ...NONE, icmp: true };
    case 'tcp':
      return { ...NONE, tcp: range };
    case 'udp':
      return { ...NONE, udp: range };
  }
}

function normalize(rs: Range[]): Range[] {
  rs.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of rs) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function intersectRanges(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const [alo, ahi] of a) {
    for (const [blo, bhi] of b) {
      const lo = Math.max(alo, blo);
      const hi = Math.min(ahi, bhi);
      if (lo <= hi) out.push([lo, hi]);
    }
  }
  return normalize(out);
}

function subtractRanges(a: readonly Range[], b: readonly Range[]): Range[] {
  let cur: Range[] = [...a];
  for (const [blo, bhi] of b) {
    const next: Range[] = [];
    for (const [lo, hi] of cur) {
      if (bhi < lo || blo > hi) next.push([lo, hi]);
      else {
        if (lo < blo) next.push([lo, blo - 1]);
        if (hi > bhi) next.push([bhi + 1, hi]);
      }
    }
    cur = next;
  }
  return cur;
}

export function union(a: PortSpace, b: PortSpace): PortSpace {
  return {
    tcp: normalize([...a.tcp, ...b.tcp]),
    udp: normalize([...a.udp, ...b.udp]),
    icmp: a.icmp || b.icmp,
    other: a.other || b.other,
  };
}

export function intersect(a: PortSpace, b: PortSpace): PortSpace {
  return {
    tcp: intersectRanges(a.tcp, b.tcp),
    udp: intersectRanges(a.udp, b.udp),
    icmp: a.icmp && b.icmp,
    other: a.other && b.other,
  };
}

export function subtract(a: PortSpace, b: PortSpace): PortSpace {
  return {
    tcp: subtractRanges(a.tcp, b.tcp),
    udp: subtractRanges(a.udp, b.udp),
    icmp: a.icmp && !b.icmp,
    other: a.other && !b.other,
  };
}

export function isEmpty(s: PortSpace): boolean {
  return s.tcp.length === 0 && s.udp.length === 0 && !s.icmp && !s.other;
}

/**
 * What one direction's chain lets through to or from `peer` (null chain: not isolated, all).
 * New connections only; replies of allowed ones always pass (conntrack).
 */
export function chainAllows(
  rules: readonly PolicyRuleSpec[] | null,
  peer: string,
  inSet: InSet,
): PortSpace {
  if (rules === null) return ALL;
  let out = NONE;
  for (const r of rules) {
    if (r.peers !== null && !r.peers.some((p) => peerMatches(p, peer, inSet))) continue;
    if (r.ports === null) return ALL;
    for (const p of r.ports) out = union(out, portSpace(p));
  }
  return out;
}

/** The first rule of a chain that lets one packet through, or null (the chain's drop). */
export function firstAllowing(
  rules: readonly PolicyRuleSpec[],
  peer: string,
  proto: 'icmp' | 'tcp' | 'udp',
  port: number | undefined,
  inSet: InSet,
): { rule: PolicyRuleSpec; peer: PolicyPeerSpec | null } | null {
  for (const r of rules) {
    const matched =
      r.peers === null ? null : (r.peers.find((p) => peerMatches(p, peer, inSet)) ?? undefined);
    if (matched === undefined) continue;
    if (r.ports === null) return { rule: r, peer: matched };
    for (const p of r.ports) {
      const ok =
        p.protocol === 'any' ||
        (p.protocol === proto &&
          (proto === 'icmp' ||
            p.port === null ||
            (port !== undefined && port >= p.port && port <= (p.endPort ?? p.port))));
      if (ok) return { rule: r, peer: matched };
    }
  }
  return null;
}

/** A port space as the API's list of protocol/port ranges ('any' when it is everything). */
export function describeSpace(s: PortSpace): FlowPorts[] {
  const full = (rs: readonly Range[]) => rs.length === 1 && rs[0][0] === 0 && rs[0][1] === 65535;
  if (full(s.tcp) && full(s.udp) && s.icmp && s.other)
    return [{ protocol: 'any', port: null, endPort: null }];
  const out: FlowPorts[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    const rs = s[protocol];
    if (full(rs)) out.push({ protocol, port: null, endPort: null });
    else
      for (const [lo, hi] of rs) out.push({ protocol, port: lo, endPort: hi === lo ? null : hi });
  }
  if (s.icmp) out.push({ protocol: 'icmp', port: null, endPort: null });
  if (s.other) out.push({ protocol: 'other', port: null, endPort: null });
  return out;
}
