/**
 * The kinds of objects latticectl knows: their API path, names, table columns, and how
 * flags become a create or patch body. One table, so every command treats every kind alike.
 */
import type { Column } from './output.js';

type Row = Record<string, any>;

/** Flags of create/patch, as commander parsed them (camelCase). */
export type Flags = Record<string, unknown>;

/** A flag of create or patch: the body field it sets, from its value. */
export interface Field {
  readonly key: string;
  readonly parse: (v: unknown) => unknown;
}

/** The flags (by attribute name, e.g. `underlayIp`) a create or patch of a kind takes. */
export type FlagMap = Readonly<Record<string, Field>>;

export interface Kind {
  /** singular, as used in messages and in `kind:` of a file */
  readonly name: string;
  readonly plural: string;
  readonly aliases: readonly string[];
  /** under /api/v1 */
  readonly path: string;
  readonly columns: readonly Column<Row>[];
  /** Creation order in a file: lower first (hosts and networks before instances). */
  readonly order: number;
  /** What `create` and `patch` take as flags (the rest comes by --data or a file). */
  readonly create: FlagMap;
  readonly patch: FlagMap;
  /** DELETE does not delete but revokes (join tokens). */
  readonly deleteVerb?: string;
}

/** `--label k=v` (repeatable) → `{k: v}`. */
export function labelsOf(items: unknown): Record<string, string> | undefined {
  if (!Array.isArray(items) || items.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of items as string[]) {
    const i = item.indexOf('=');
    if (i <= 0) throw new Error(`--label must be KEY=VALUE, got "${item}"`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

const int = (v: unknown): number => Number(v);
const same = (v: unknown): unknown => v;
/** A repeatable flag given once, where the field takes one value. */
const one = (v: unknown): unknown => {
  if (!Array.isArray(v)) return v;
  if (v.length > 1) throw new Error(`this takes one value, got ${v.length}: ${v.join(', ')}`);
  return v[0];
};
const field = (key: string, parse: (v: unknown) => unknown = same): Field => ({ key, parse });
const labels = field('labels', labelsOf);

/** The body the given flags make (`given`: attribute names the user typed). */
export function bodyOf(flags: FlagMap, values: Flags, given: readonly string[]): Row {
  const body: Row = {};
  for (const a of given) {
    const f = flags[a];
    try {
      body[f.key] = f.parse(values[a]);
    } catch (e) {
      throw new Error(
        `--${a.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
  return body;
}

const AGO = (iso: string | null | undefined): string => {
  if (!iso) return '-';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 0) return `in ${fmtSpan(-s)}`;
  return `${fmtSpan(s)} ago`;
};
function fmtSpan(s: number): string {
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export const KINDS: readonly Kind[] = [
  {
    name: 'host',
    plural: 'hosts',
    aliases: ['h'],
    path: '/hosts',
    order: 0,
    columns: [
      { header: 'NAME', value: (r) => r.name },
      { header: 'UNDERLAY', value: (r) => r.underlayIp },
      { header: 'UPLINK', value: (r) => r.uplink },
      { header: 'AGENT', value: (r) => (r.agent?.connected ? 'connected' : 'down') },
      { header: 'APPLIED', value: (r) => `${r.appliedRevision}/${r.desiredRevision}` },
      { header: 'IN-SYNC', value: (r) => r.inSync },
      { header: 'ERRORS', value: (r) => r.agent?.errors?.length ?? 0 },
      { header: 'INSTANCES', value: (r) => r.instanceCount },
      { header: 'LABELS', value: (r) => r.labels },
    ],
    create: {
      underlayIp: field('underlayIp'),
      uplink: field('uplink'),
      asn: field('asn', int),
      label: labels,
    },
    patch: {
      underlayIp: field('underlayIp'),
      uplink: field('uplink'),
      asn: field('asn', (v) => (v === 'default' ? null : int(v))),
      label: labels,
    },
  },
  {
    name: 'network',
    plural: 'networks',
    aliases: ['net'],
    path: '/networks',
    order: 1,
    columns: [
      { header: 'NAME', value: (r) => r.name },
      { header: 'MODEL', value: (r) => r.model },
      { header: 'CIDR', value: (r) => r.cidr },
      { header: 'GATEWAY', value: (r) => r.gateway },
      { header: 'VLAN', value: (r) => r.vlanId },
      { header: 'VNI', value: (r) => r.vni },
      { header: 'MTU', value: (r) => r.mtu },
      { header: 'INSTANCES', value: (r) => r.instanceCount },
      { header: 'HOSTS', value: (r) => r.hostCount },
    ],
    create: {
      model: field('model'),
      cidr: field('cidr'),
      gateway: field('gateway'),
      mtu: field('mtu', int),
      vlanId: field('vlanId', int),
      vni: field('vni', int),
      encapsulation: field('encapsulation'),
      routing: field('routing'),
      blockPrefixLen: field('blockPrefixLen', int),
      transport: field('transport'),
    },
    patch: {},
  },
  {
    name: 'router',
    plural: 'routers',
    aliases: ['rt'],
    path: '/routers',
    order: 2,
    columns: [
      { header: 'NAME', value: (r) => r.name },
      { header: 'NETWORKS', value: (r) => r.networks },
      { header: 'REVISION', value: (r) => r.revision },
    ],
    create: { network: field('networks') },
    patch: { network: field('networks'), attach: field('attach'), detach: field('detach') },
  },
  {
    name: 'policy',
    plural: 'policies',
    aliases: ['pol'],
    path: '/policies',
    order: 3,
    create: {},
    patch: {},
    columns: [
      { header: 'NAME', value: (r) => r.name },
      { header: 'SELECTOR', value: (r) => JSON.stringify(r.selector) },
      { header: 'NETWORKS', value: (r) => r.networks },
      {
        header: 'INGRESS',
        value: (r) => (r.ingress === null ? 'any' : `${r.ingress.length} rules`),
      },
      { header: 'EGRESS', value: (r) => (r.egress === null ? 'any' : `${r.egress.length} rules`) },
    ],
  },
  {
    name: 'instance',
    plural: 'instances',
    aliases: ['inst', 'i'],
    path: '/instances',
    order: 4,
    columns: [
      { header: 'NAME', value: (r) => r.name },
      { header: 'NETWORK', value: (r) => r.network },
      { header: 'HOST', value: (r) => r.host },
      { header: 'IP', value: (r) => r.ip },
      { header: 'MAC', value: (r) => r.mac },
      { header: 'STATE', value: (r) => r.state },
      { header: 'LABELS', value: (r) => r.labels },
    ],
    create: {
      network: field('network', one),
      host: field('host'),
      ip: field('ip'),
      mac: field('mac'),
      label: labels,
    },
    patch: { host: field('host'), label: labels },
  },
  {
    name: 'join-token',
    plural: 'join-tokens',
    aliases: ['jt'],
    path: '/join-tokens',
    order: 5,
    deleteVerb: 'revoked',
    columns: [
      { header: 'NAME', value: (r) => r.name },
      { header: 'STATE', value: (r) => r.state },
      { header: 'USES', value: (r) => `${r.uses}/${r.maxUses}` },
      { header: 'EXPIRES', value: (r) => AGO(r.expiresAt) },
      { header: 'REJOIN', value: (r) => r.allowRejoin },
      { header: 'LABELS', value: (r) => r.labels },
    ],
    create: {
      ttl: field('ttlSeconds', int),
      maxUses: field('maxUses', int),
      allowRejoin: field('allowRejoin'),
      description: field('description'),
      label: labels,
    },
    patch: {},
  },
];

/** The kind a word names: singular, plural, alias or `kind:` of a file, any case. */
export function kindOf(word: string): Kind | undefined {
  const w = word.toLowerCase();
  return KINDS.find(
    (k) => k.name === w || k.plural === w || k.aliases.includes(w) || k.name.replace('-', '') === w,
  );
}

export const KIND_WORDS = KINDS.flatMap((k) => [k.plural, k.name, ...k.aliases]);
