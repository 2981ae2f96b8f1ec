/**
 * The kinds of objects latticectl knows: their API path, names, table columns, and how
 * flags become a create or patch body. One table, so every command treats every kind alike.
 */
import type { Column } from './output.js';

type Row = Record<string, any>;

/** Flags of create/patch, as commander parsed them (camelCase). */
export type Flags = Record<string, unknown>;

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
  /** The create body from flags (name added by the caller). */
  readonly createBody?: (f: Flags) => Row;
  readonly patchBody?: (f: Flags) => Row;
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

/** Only the keys whose value was given. */
function defined(o: Row): Row {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const int = (v: unknown): number | undefined => (v === undefined ? undefined : Number(v));

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
    createBody: (f) =>
      defined({
        underlayIp: f.underlayIp,
        uplink: f.uplink,
        asn: int(f.asn),
        labels: labelsOf(f.label),
      }),
    patchBody: (f) =>
      defined({
        underlayIp: f.underlayIp,
        uplink: f.uplink,
        asn: f.asn === 'default' ? null : int(f.asn),
        labels: labelsOf(f.label),
      }),
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
    createBody: (f) =>
      defined({
        model: f.model,
        cidr: f.cidr,
        gateway: f.gateway,
        mtu: int(f.mtu),
        vlanId: int(f.vlanId),
        vni: int(f.vni),
        encapsulation: f.encapsulation,
        routing: f.routing,
        blockPrefixLen: int(f.blockPrefixLen),
        transport: f.transport,
      }),
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
    createBody: (f) => defined({ networks: f.network }),
    patchBody: (f) => defined({ networks: f.network, attach: f.attach, detach: f.detach }),
  },
  {
    name: 'policy',
    plural: 'policies',
    aliases: ['pol'],
    path: '/policies',
    order: 3,
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
    createBody: (f) =>
      defined({
        network: f.network,
        host: f.host,
        ip: f.ip,
        mac: f.mac,
        labels: labelsOf(f.label),
      }),
    patchBody: (f) => defined({ host: f.host, labels: labelsOf(f.label) }),
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
    createBody: (f) =>
      defined({
        ttlSeconds: int(f.ttl),
        maxUses: int(f.maxUses),
        allowRejoin: f.allowRejoin === true ? true : undefined,
        description: f.description,
        labels: labelsOf(f.label),
      }),
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
