/**
 * Network policy as plain data (issue 12). Semantics are Kubernetes NetworkPolicy's:
 * an instance selected by some policy for a direction accepts, in that direction, only what
 * some policy selecting it allows; an instance selected by none is unrestricted. Rules are
 * stateful: replies (and related ICMP) of an allowed connection pass.
 *
 * Stored normalised: every list present (possibly empty), ids not names, ports explicit.
 */

export const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
export type SelectorOperator = (typeof SELECTOR_OPERATORS)[number];

export interface SelectorExpression {
  readonly key: string;
  readonly operator: SelectorOperator;
  /** Non-empty for In/NotIn, empty for Exists/DoesNotExist. */
  readonly values: readonly string[];
}

/** Kubernetes' LabelSelector: all terms must hold; `{}` selects everything. */
export interface LabelSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly matchExpressions: readonly SelectorExpression[];
}

export const POLICY_PROTOCOLS = ['tcp', 'udp', 'icmp', 'any'] as const;
export type PolicyProtocol = (typeof POLICY_PROTOCOLS)[number];

/**
 * A protocol and, for tcp/udp, a destination port range `[port, endPort]`
 * (`port` null: every port; `endPort` null: the single `port`).
 */
export interface PolicyPort {
  readonly protocol: PolicyProtocol;
  readonly port: number | null;
  readonly endPort: number | null;
}

/** Instances matching `selector` (in `networkIds` when not empty, else in any network). */
export interface SelectorPeer {
  readonly selector: LabelSelector;
  readonly networkIds: readonly string[];
}

/** Addresses in `cidr` but in none of `except` (Kubernetes' ipBlock). */
export interface CidrPeer {
  readonly cidr: string;
  readonly except: readonly string[];
}

export type PolicyPeer = SelectorPeer | CidrPeer;

export function isCidrPeer(p: PolicyPeer): p is CidrPeer {
  return 'cidr' in p;
}

/** One allow rule: traffic from/to any of `peers` (empty: anyone) on any of `ports` (empty: all). */
export interface PolicyRule {
  readonly peers: readonly PolicyPeer[];
  readonly ports: readonly PolicyPort[];
}

export interface Policy {
  readonly id: string;
  readonly name: string;
  /** Which instances the policy applies to. */
  readonly selector: LabelSelector;
  /** Limits the selection to these networks; empty: every network. Sorted. */
  readonly networkIds: readonly string[];
  /** null: the policy says nothing about ingress; []: selected instances accept nothing. */
  readonly ingress: readonly PolicyRule[] | null;
  /** null: the policy says nothing about egress; []: selected instances send nothing. */
  readonly egress: readonly PolicyRule[] | null;
}

export type PolicyDirection = 'ingress' | 'egress';

/** True when `labels` satisfy every term of the selector. */
export function matchesSelector(
  sel: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const k in sel.matchLabels) {
    if (labels[k] !== sel.matchLabels[k]) return false;
  }
  for (const e of sel.matchExpressions) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    switch (e.operator) {
      case 'In':
        if (!has || !e.values.includes(labels[e.key])) return false;
        break;
      case 'NotIn':
        if (has && e.values.includes(labels[e.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** True when the policy selects an instance (of `networkId`, labelled `labels`). */
export function policySelects(
  p: Pick<Policy, 'selector' | 'networkIds'>,
  networkId: string,
  labels: Readonly<Record<string, string>>,
): boolean {
  return (
    (p.networkIds.length === 0 || p.networkIds.includes(networkId)) &&
    matchesSelector(p.selector, labels)
  );
}

/** A canonical JSON text of a selector (keys sorted, values sorted), for hashing and equality. */
export function canonicalSelector(sel: LabelSelector): string {
  const labels = Object.keys(sel.matchLabels)
    .sort()
    .map((k) => [k, sel.matchLabels[k]]);
  const exprs = sel.matchExpressions
    .map((e) => [e.key, e.operator, [...e.values].sort()] as const)
    .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  return JSON.stringify([labels, exprs]);
}
