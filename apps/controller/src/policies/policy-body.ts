/**
 * Validation and normalisation of policy bodies (selector, rules, peers, ports). The DTO
 * only checks the top-level shape; everything inside is checked here, each problem a 400
 * naming its field path (`ingress[0].ports[1].port`). The result is the domain form of
 * libs/model/src/policy.ts, with network references still as given (resolved to ids by the
 * service).
 */
import {
  contains,
  isCanonicalCidr,
  parseCidr,
  POLICY_PROTOCOLS,
  SELECTOR_OPERATORS,
  type LabelSelector,
  type PolicyPort,
  type PolicyProtocol,
  type SelectorExpression,
  type SelectorOperator,
} from '../../../../libs/model/src/index.js';
import { InvalidInput } from '../common/errors.js';
import { LABEL_VALUE_PATTERN, labelKeyProblem, labelsProblem } from '../common/validators.js';

export const MAX_RULES = 64;
export const MAX_PEERS = 64;
export const MAX_PORTS = 64;
export const MAX_EXPRESSIONS = 64;
export const MAX_VALUES = 64;
export const MAX_NETWORK_REFS = 256;

/** A rule before its peers' network references are resolved. */
export interface RawRule {
  peers: ({ selector: LabelSelector; networks: string[] } | { cidr: string; except: string[] })[];
  ports: PolicyPort[];
}

class Problems {
  readonly list: { field: string; errors: string[] }[] = [];
  add(field: string, error: string): void {
    this.list.push({ field, errors: [error] });
  }
  throwIfAny(): void {
    if (this.list.length > 0) throw new InvalidInput(this.list);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyKeys(p: Problems, field: string, v: Record<string, unknown>, keys: string[]): void {
  for (const k of Object.keys(v))
    if (!keys.includes(k)) p.add(`${field}.${k}`, `${field}.${k} is not a known field`);
}

function selector(p: Problems, field: string, v: unknown): LabelSelector {
  const empty: LabelSelector = { matchLabels: {}, matchExpressions: [] };
  if (!isObject(v)) {
    p.add(field, `${field} must be an object with matchLabels and/or matchExpressions`);
    return empty;
  }
  onlyKeys(p, field, v, ['matchLabels', 'matchExpressions']);
  let matchLabels: Record<string, string> = {};
  if (v.matchLabels !== undefined) {
    const bad = labelsProblem(v.matchLabels);
    if (bad) p.add(`${field}.matchLabels`, bad.replace('$property', `${field}.matchLabels`));
    else matchLabels = { ...(v.matchLabels as Record<string, string>) };
  }
  const matchExpressions: SelectorExpression[] = [];
  if (v.matchExpressions !== undefined) {
    const f = `${field}.matchExpressions`;
    if (!Array.isArray(v.matchExpressions) || v.matchExpressions.length > MAX_EXPRESSIONS) {
      p.add(f, `${f} must be an array of at most ${MAX_EXPRESSIONS} expressions`);
    } else {
      v.matchExpressions.forEach((e: unknown, i) => {
        const ef = `${f}[${i}]`;
        if (!isObject(e)) return p.add(ef, `${ef} must be an object {key, operator, values}`);
        onlyKeys(p, ef, e, ['key', 'operator', 'values']);
        const key = typeof e.key === 'string' ? e.key : '';
        const keyBad = typeof e.key !== 'string' ? 'must be a label key' : labelKeyProblem(key);
        if (keyBad) p.add(`${ef}.key`, `${ef}.key: ${keyBad}`);
        const op = e.operator as SelectorOperator;
        if (!SELECTOR_OPERATORS.includes(op))
          p.add(`${ef}.operator`, `${ef}.operator must be one of ${SELECTOR_OPERATORS.join(', ')}`);
        const needsValues = op === 'In' || op === 'NotIn';
        let values: string[] = [];
        if (
          e.values !== undefined &&
          (!Array.isArray(e.values) ||
            e.values.length > MAX_VALUES ||
            !e.values.every((x) => typeof x === 'string' && LABEL_VALUE_PATTERN.test(x)))
        ) {
          // One message per field: a refused list is not also reported as empty.
          p.add(`${ef}.values`, `${ef}.values must be at most ${MAX_VALUES} label values`);
        } else {
          if (e.values !== undefined) values = [...new Set(e.values as string[])].sort();
          if (needsValues && values.length === 0)
            p.add(`${ef}.values`, `${ef}.values must hold at least one value for ${op}`);
          if (!needsValues && values.length > 0 && SELECTOR_OPERATORS.includes(op))
            p.add(`${ef}.values`, `${ef}.values must be empty for ${op}`);
        }
        matchExpressions.push({ key, operator: op, values });
      });
    }
  }
  return { matchLabels, matchExpressions };
}

/** Network references as given (validated for shape only). */
export function networkRefs(p: Problems, field: string, v: unknown): string[] {
  if (v === undefined) return [];
  if (
    !Array.isArray(v) ||
    v.length > MAX_NETWORK_REFS ||
    !v.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 63)
  ) {
    p.add(field, `${field} must be an array of at most ${MAX_NETWORK_REFS} network ids or names`);
    return [];
  }
  return [...new Set(v as string[])];
}

function cidr(p: Problems, field: string, v: unknown): string | null {
  if (typeof v !== 'string' || !isCanonicalCidr(v)) {
    p.add(field, `${field} must be an IPv4 CIDR in canonical form, e.g. 10.0.0.0/8`);
    return null;
  }
  return v;
}

function port(p: Problems, field: string, v: unknown): PolicyPort | null {
  if (!isObject(v)) {
    p.add(field, `${field} must be an object {protocol, port?, endPort?}`);
    return null;
  }
  onlyKeys(p, field, v, ['protocol', 'port', 'endPort']);
  const protocol = v.protocol as PolicyProtocol;
  if (!POLICY_PROTOCOLS.includes(protocol)) {
    p.add(`${field}.protocol`, `${field}.protocol must be one of ${POLICY_PROTOCOLS.join(', ')}`);
    return null;
  }
  const isPort = (x: unknown) =>
    Number.isInteger(x) && (x as number) >= 1 && (x as number) <= 65535;
  const withPorts = protocol === 'tcp' || protocol === 'udp';
  let from: number | null = null;
  let to: number | null = null;
  if (v.port !== undefined && v.port !== null) {
    if (!withPorts) p.add(`${field}.port`, `${field}.port is only for tcp and udp`);
    else if (!isPort(v.port))
      p.add(`${field}.port`, `${field}.port must be an integer from 1 to 65535`);
    else from = v.port as number;
  }
  if (v.endPort !== undefined && v.endPort !== null) {
    if (!withPorts) p.add(`${field}.endPort`, `${field}.endPort is only for tcp and udp`);
    else if (!isPort(v.endPort))
      p.add(`${field}.endPort`, `${field}.endPort must be an integer from 1 to 65535`);
    else if (v.port === undefined || v.port === null)
      p.add(`${field}.endPort`, `${field}.endPort needs port`);
    else if (from === null)
      return null; // port is refused already
    else if ((v.endPort as number) < from)
      p.add(`${field}.endPort`, `${field}.endPort must not be below port`);
    else to = v.endPort === from ? null : (v.endPort as number);
  }
  return { protocol, port: from, endPort: to };
}

function rules(p: Problems, field: string, v: unknown): RawRule[] | null {
  if (v === null) return null;
  if (!Array.isArray(v) || v.length > MAX_RULES) {
    p.add(field, `${field} must be an array of at most ${MAX_RULES} rules (or null)`);
    return [];
  }
  return v.map((r: unknown, i): RawRule => {
    const rf = `${field}[${i}]`;
    const out: RawRule = { peers: [], ports: [] };
    if (!isObject(r)) {
      p.add(rf, `${rf} must be an object {peers?, ports?}`);
      return out;
    }
    onlyKeys(p, rf, r, ['peers', 'ports']);
    if (r.peers !== undefined) {
      if (!Array.isArray(r.peers) || r.peers.length > MAX_PEERS)
        p.add(`${rf}.peers`, `${rf}.peers must be an array of at most ${MAX_PEERS} peers`);
      else
        r.peers.forEach((peer: unknown, j) => {
          const pf = `${rf}.peers[${j}]`;
          if (!isObject(peer) || 'selector' in peer === 'cidr' in peer) {
            return p.add(pf, `${pf} must be {selector, networks?} or {cidr, except?}`);
          }
          if ('selector' in peer) {
            onlyKeys(p, pf, peer, ['selector', 'networks']);
            out.peers.push({
              selector: selector(p, `${pf}.selector`, peer.selector),
              networks: networkRefs(p, `${pf}.networks`, peer.networks),
            });
          } else {
            onlyKeys(p, pf, peer, ['cidr', 'except']);
            const c = cidr(p, `${pf}.cidr`, peer.cidr);
            const except: string[] = [];
            if (peer.except !== undefined) {
              if (!Array.isArray(peer.except) || peer.except.length > MAX_PEERS)
                p.add(
                  `${pf}.except`,
                  `${pf}.except must be an array of at most ${MAX_PEERS} CIDRs`,
                );
              else
                peer.except.forEach((x: unknown, k) => {
                  const e = cidr(p, `${pf}.except[${k}]`, x);
                  if (!e || !c) return;
                  const outer = parseCidr(c)!;
                  const inner = parseCidr(e)!;
                  const inside = inner.prefix >= outer.prefix && contains(outer, inner.base);
                  if (!inside)
                    p.add(`${pf}.except[${k}]`, `${pf}.except[${k}] must lie inside ${c}`);
                  else except.push(e);
                });
            }
            if (c) out.peers.push({ cidr: c, except: [...new Set(except)].sort() });
          }
        });
    }
    if (r.ports !== undefined) {
      if (!Array.isArray(r.ports) || r.ports.length > MAX_PORTS)
        p.add(`${rf}.ports`, `${rf}.ports must be an array of at most ${MAX_PORTS} ports`);
      else
        r.ports.forEach((x: unknown, j) => {
          const pp = port(p, `${rf}.ports[${j}]`, x);
          if (pp) out.ports.push(pp);
        });
    }
    return out;
  });
}

export interface RawPolicy {
  selector?: LabelSelector;
  networks?: string[];
  /** undefined: not given; null: removed (PATCH) or absent (create). */
  ingress?: RawRule[] | null;
  egress?: RawRule[] | null;
}

/** Validates the policy fields of a create (`partial` false) or a PATCH body. */
export function parsePolicyBody(body: Record<string, unknown>, partial: boolean): RawPolicy {
  const p = new Problems();
  const out: RawPolicy = {};
  if (body.selector !== undefined || !partial)
    out.selector = selector(p, 'selector', body.selector);
  if (body.networks !== undefined) out.networks = networkRefs(p, 'networks', body.networks);
  for (const dir of ['ingress', 'egress'] as const) {
    if (body[dir] !== undefined) out[dir] = rules(p, dir, body[dir]);
    else if (!partial) out[dir] = null;
  }
  if (!partial && out.ingress === null && out.egress === null)
    p.add('ingress', 'give ingress and/or egress rules (an empty list allows nothing)');
  p.throwIfAny();
  return out;
}

export { Problems };
