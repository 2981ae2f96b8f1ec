import pg from 'pg';
import {
  computeHost,
  DesiredStateEngine,
  inApplyOrder,
  TopologyIndex,
  type Change,
} from '../../libs/engine/src/index.js';
import type { Topology } from '../../libs/model/src/index.js';
import { createDataSource } from '../../apps/controller/src/database/data-source.js';
import { loadTopology } from '../../apps/controller/src/desired-state/topology.repository.js';
import type { AgentProcess } from '../support/agents.js';
import type { Api, Workload } from './fault-workload.js';
import { sleep } from './fault-workload.js';

type Resource = { kind: string; key: string; spec: unknown };

/** Resources by key, in a canonical JSON form (what goes over the wire). */
export function canonical(rs: readonly Resource[]): string[] {
  return [...rs]
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((r) => JSON.stringify({ kind: r.kind, key: r.key, spec: r.spec }));
}

/** First few differences between two canonical states, for a readable failure. */
function describeDiff(want: string[], got: string[]): string {
  const w = new Set(want);
  const g = new Set(got);
  const missing = want.filter((x) => !g.has(x)).slice(0, 3);
  const extra = got.filter((x) => !w.has(x)).slice(0, 3);
  return `${want.length} wanted, ${got.length} held; missing ${JSON.stringify(missing)}; extra ${JSON.stringify(extra)}`;
}

async function query<T = any>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** The topology in the database, read as a fresh controller reads it at start. */
export async function topologyOf(
  databaseUrl: string,
): Promise<{ topology: Topology; revision: number }> {
  const ds = createDataSource(databaseUrl, 1);
  await ds.initialize();
  try {
    return await loadTopology(ds.manager);
  } finally {
    await ds.destroy();
  }
}

/** Per host id: the desired state a full compute from the database gives. */
export async function recompute(
  databaseUrl: string,
): Promise<{ revision: number; states: Map<string, string[]>; topology: Topology }> {
  const { topology, revision } = await topologyOf(databaseUrl);
  const ix = TopologyIndex.from(topology);
  const states = new Map<string, string[]>();
  for (const id of topology.hosts.keys())
    states.set(id, canonical(inApplyOrder(computeHost(ix, id))));
  return { revision, states, topology };
}

/**
 * What the database must hold after any fault, whatever was in flight: every problem found,
 * empty when none.
 *
 * - the workload's ledger: acknowledged creates, moves and deletes are there (same address,
 *   MAC, host); refused ones are not; no instance nobody asked for; a bulk all or nothing;
 * - no half-made object: every instance's address lies in its network (in a block of its
 *   host, for block-based models) and is not reserved; the free ranges are disjoint, hold no
 *   address in use and, with the addresses in use, cover exactly the allocatable space; no
 *   claimed block is empty;
 * - the revision log: revisions 1..N without a gap, every row stamped with a revision
 *   that exists and that records its change, and the log replayed from nothing yields what
 *   the tables hold.
 */
export async function checkDatabase(databaseUrl: string, w?: Workload): Promise<string[]> {
  const problems: string[] = [];
  const rows = await query<{
    name: string;
    id: string;
    network: string;
    host: string;
    ip: string;
    mac: string;
  }>(
    databaseUrl,
    `SELECT i.name, i.id, n.name AS network, h.name AS host, host(i.ip) AS ip, i.mac::text AS mac
       FROM instances i JOIN networks n ON n.id = i.network_id JOIN hosts h ON h.id = i.host_id`,
  );
  const inDb = new Map(rows.map((r) => [r.name, r]));
  if (w) {
    for (const rec of w.instances.values()) {
      const row = inDb.get(rec.name);
      if (rec.exists === 'yes' && !row) problems.push(`acknowledged instance ${rec.name} is lost`);
      if (rec.exists === 'no' && row)
        problems.push(
          `instance ${rec.name} exists, though its delete (or refused create) was answered`,
        );
      if (!row) continue;
      if (!rec.hosts.has(row.host))
        problems.push(
          `instance ${rec.name} is on ${row.host}, expected ${[...rec.hosts].join(' or ')}`,
        );
      if (row.network !== rec.network)
        problems.push(`instance ${rec.name} is in ${row.network}, expected ${rec.network}`);
      if (rec.ip !== undefined && row.ip !== rec.ip)
        problems.push(`instance ${rec.name} has ${row.ip}, answered ${rec.ip}`);
      if (rec.mac !== undefined && row.mac !== rec.mac)
        problems.push(`instance ${rec.name} has MAC ${row.mac}, answered ${rec.mac}`);
    }
    for (const name of inDb.keys())
      if (name.startsWith(`${w.prefix}-`) && !w.instances.has(name))
        problems.push(`instance ${name} exists but was never asked for`);
    for (const b of w.bulks) {
      // (an acknowledged bulk's instances are checked one by one above)
      const present = b.names.filter((n) => inDb.has(n)).length;
      if (b.outcome === 'unknown' && present !== 0 && present !== b.names.length)
        problems.push(`bulk ${b.id} is half made: ${present} of ${b.names.length} instances`);
      if (b.outcome === 'refused' && present !== 0)
        problems.push(`refused bulk ${b.id} left ${present} instances`);
    }
  }

  // Addresses: inside the network (or the host's block), not reserved.
  for (const r of await query<{ name: string; why: string }>(
    databaseUrl,
    `SELECT i.name, CASE
         WHEN NOT (i.ip << n.cidr) THEN 'outside its network'
         WHEN i.ip = host(network(n.cidr))::inet OR i.ip = host(broadcast(n.cidr))::inet THEN 'the network or broadcast address'
         WHEN i.ip = n.gateway THEN 'the gateway'
         WHEN n.block_prefix_len IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM host_blocks b WHERE b.network_id = n.id AND b.host_id = i.host_id AND i.ip << b.cidr)
           THEN 'outside its host''s blocks'
         WHEN n.block_prefix_len IS NOT NULL AND EXISTS (
           SELECT 1 FROM host_blocks b WHERE b.network_id = n.id AND i.ip << b.cidr
              AND ((i.ip - network(b.cidr)::inet) IN (0, 1) OR i.ip = host(broadcast(b.cidr))::inet))
           THEN 'reserved in its block'
       END AS why
       FROM instances i JOIN networks n ON n.id = i.network_id`,
  ))
    if (r.why) problems.push(`instance ${r.name}: address is ${r.why}`);

  // Free ranges: disjoint, free, and with the addresses in use covering the space exactly.
  for (const r of await query<{ network: string; owner: string; lo: string; prev: string }>(
    databaseUrl,
    `SELECT * FROM (SELECT n.name AS network, f.owner, f.lo, lag(f.hi) OVER (PARTITION BY f.network_id, f.owner ORDER BY f.hi) AS prev
       FROM free_addresses f JOIN networks n ON n.id = f.network_id) x WHERE lo <= prev`,
  ))
    problems.push(`free addresses of ${r.network}/${r.owner} overlap at ${r.lo}`);
  for (const r of await query<{ name: string; network: string }>(
    databaseUrl,
    `SELECT i.name, n.name AS network FROM instances i JOIN networks n ON n.id = i.network_id
       JOIN free_addresses f ON f.network_id = i.network_id
        AND f.owner = CASE WHEN n.block_prefix_len IS NULL THEN '00000000-0000-0000-0000-000000000000'::uuid ELSE i.host_id END
        AND (i.ip - '0.0.0.0'::inet) BETWEEN f.lo AND f.hi`,
  ))
    problems.push(`instance ${r.name}'s address is also free in ${r.network}`);
  for (const r of await query<{ network: string; free: string; used: string; size: string }>(
    databaseUrl,
    `SELECT n.name AS network,
            coalesce((SELECT sum(hi - lo + 1) FROM free_addresses f
                       WHERE f.network_id = n.id AND f.owner = '00000000-0000-0000-0000-000000000000'), 0) AS free,
            (SELECT count(*) FROM instances i WHERE i.network_id = n.id) AS used,
            (2 ^ (32 - masklen(n.cidr)))::bigint - 3 AS size
       FROM networks n WHERE n.block_prefix_len IS NULL`,
  ))
    if (Number(r.free) + Number(r.used) !== Number(r.size))
      problems.push(
        `network ${r.network}: ${r.free} free + ${r.used} used addresses, of ${r.size} allocatable (leaked or doubly used)`,
      );
  for (const r of await query<{
    network: string;
    cidr: string;
    free: string;
    used: string;
    size: string;
  }>(
    databaseUrl,
    `SELECT n.name AS network, b.cidr::text AS cidr,
            coalesce((SELECT sum(hi - lo + 1) FROM free_addresses f WHERE f.network_id = n.id AND f.owner = b.host_id
                        AND f.lo >= (network(b.cidr) - '0.0.0.0'::inet) AND f.hi <= (broadcast(b.cidr) - '0.0.0.0'::inet)), 0) AS free,
            (SELECT count(*) FROM instances i WHERE i.network_id = n.id AND i.ip << b.cidr) AS used,
            (2 ^ (32 - masklen(b.cidr)))::bigint - 3 AS size
       FROM host_blocks b JOIN networks n ON n.id = b.network_id`,
  )) {
    if (Number(r.free) + Number(r.used) !== Number(r.size))
      problems.push(
        `block ${r.cidr} of ${r.network}: ${r.free} free + ${r.used} used, of ${r.size}`,
      );
    if (Number(r.used) === 0) problems.push(`block ${r.cidr} of ${r.network} is claimed but empty`);
  }
  for (const r of await query<{ network: string; owner: string; n: string }>(
    databaseUrl,
    `SELECT n.name AS network, f.owner, count(*) AS n FROM free_addresses f JOIN networks n ON n.id = f.network_id
      WHERE n.block_prefix_len IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM host_blocks b WHERE b.network_id = f.network_id AND b.host_id = f.owner
           AND f.lo >= (network(b.cidr) - '0.0.0.0'::inet) AND f.hi <= (broadcast(b.cidr) - '0.0.0.0'::inet))
      GROUP BY 1, 2`,
  ))
    problems.push(`${r.n} free address ranges of ${r.network} lie outside ${r.owner}'s blocks`);
  for (const r of await query<{
    network: string;
    free: string;
    claimed: string;
    total: string;
    overlap: string;
  }>(
    databaseUrl,
    `SELECT n.name AS network,
            coalesce((SELECT sum(hi - lo + 1) FROM free_blocks f WHERE f.network_id = n.id), 0) AS free,
            (SELECT count(*) FROM host_blocks b WHERE b.network_id = n.id) AS claimed,
            (2 ^ (n.block_prefix_len - masklen(n.cidr)))::bigint AS total,
            (SELECT count(*) FROM host_blocks b JOIN free_blocks f ON f.network_id = b.network_id
              AND ((b.cidr - '0.0.0.0'::inet) >> (32 - n.block_prefix_len)) BETWEEN f.lo AND f.hi
              WHERE b.network_id = n.id) AS overlap
       FROM networks n WHERE n.block_prefix_len IS NOT NULL`,
  ))
    if (Number(r.free) + Number(r.claimed) !== Number(r.total) || Number(r.overlap) > 0)
      problems.push(
        `network ${r.network}: ${r.free} free + ${r.claimed} claimed blocks of ${r.total} (${r.overlap} both)`,
      );

  // The revision log.
  const log = await query<{ revision: string; changes: Change[] }>(
    databaseUrl,
    'SELECT revision, changes FROM revisions ORDER BY revision',
  );
  const last = log.length > 0 ? Number(log[log.length - 1].revision) : 0;
  // (compaction may have dropped a prefix: what remains is contiguous up to the newest)
  const first = log.length > 0 ? Number(log[0].revision) : 1;
  log.forEach((r, k) => {
    if (Number(r.revision) !== first + k && problems.length < 50)
      problems.push(`revision log gap: revision ${r.revision} follows ${first + k - 1}`);
  });
  for (const r of await query<{ what: string; n: string }>(
    databaseUrl,
    `SELECT 'hosts ahead of the log' AS what, count(*) AS n FROM hosts WHERE desired_revision > $1 OR revision > $1
     UNION ALL SELECT 'instances ahead of the log', count(*) FROM instances WHERE revision > $1
     UNION ALL SELECT 'instances whose revision does not record them', count(*) FROM instances i
       WHERE i.revision >= $2 AND NOT EXISTS (SELECT 1 FROM revisions r WHERE r.revision = i.revision AND (
         r.changes @> jsonb_build_array(jsonb_build_object('type', 'instance.upsert', 'instance', jsonb_build_object('id', i.id)))
         OR r.changes @> jsonb_build_array(jsonb_build_object('type', 'instance.move', 'id', i.id))))`,
    [last, first],
  ))
    if (Number(r.n) > 0) problems.push(`${r.n} ${r.what}`);
  const { topology, revision } = await topologyOf(databaseUrl);
  if (revision !== last)
    problems.push(`topology read at revision ${revision}, log ends at ${last}`);
  const replay = new DesiredStateEngine({
    hosts: new Map(),
    networks: new Map(),
    instances: new Map(),
    blocks: [],
    routers: new Map(),
  });
  for (const r of log) replay.apply(r.changes);
  const ix = TopologyIndex.from(topology);
  for (const id of first === 1 ? topology.hosts.keys() : []) {
    const want = canonical(inApplyOrder(computeHost(ix, id)));
    const got = canonical(inApplyOrder(replay.stateOf(id)));
    if (want.join('\n') !== got.join('\n'))
      problems.push(
        `host ${topology.hosts.get(id)!.name}: the log replayed differs from the tables (${describeDiff(want, got)})`,
      );
  }
  return problems;
}

/**
 * Every host's `GET /hosts/{h}/desired-state` against a full compute from the database:
 * a phantom (something the engine holds that never committed) or a lost change shows here.
 */
export async function checkDesiredStates(api: Api, databaseUrl: string): Promise<string[]> {
  const problems: string[] = [];
  const { revision, states, topology } = await recompute(databaseUrl);
  for (const [id, want] of states) {
    const name = topology.hosts.get(id)!.name;
    const res = await api.call('GET', `/hosts/${name}/desired-state`);
    if (res.status !== 200) {
      problems.push(
        `desired state of ${name}: ${res.status} ${res.error ?? JSON.stringify(res.body)}`,
      );
      continue;
    }
    if (res.body.revision !== revision)
      problems.push(
        `desired state of ${name} at revision ${res.body.revision}, database at ${revision}`,
      );
    const got = canonical(res.body.resources);
    if (got.join('\n') !== want.join('\n'))
      problems.push(
        `desired state of ${name} differs from a recompute (${describeDiff(want, got)})`,
      );
  }
  return problems;
}

/**
 * Waits until every agent's data plane holds exactly its host's desired state; returns the
 * milliseconds it took, or throws naming the hosts that did not converge.
 */
export async function waitConverged(
  api: Api,
  agents: ReadonlyMap<string, AgentProcess>,
  timeoutMs = 15_000,
): Promise<number> {
  const t0 = Date.now();
  const want = new Map<string, string[]>();
  for (const h of agents.keys()) {
    const res = await api.call('GET', `/hosts/${h}/desired-state`);
    if (res.status !== 200) throw new Error(`desired state of ${h}: ${res.status}`);
    want.set(h, canonical(res.body.resources));
  }
  let lagging: string[] = [];
  for (;;) {
    lagging = [];
    for (const [h, a] of agents) {
      let got: string[];
      try {
        got = canonical(a.applied());
      } catch {
        got = []; // being rewritten
      }
      if (got.join('\n') !== want.get(h)!.join('\n')) lagging.push(h);
    }
    if (lagging.length === 0) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) break;
    await sleep(50);
  }
  const detail = lagging.map((h) => {
    let got: string[] = [];
    try {
      got = canonical(agents.get(h)!.applied());
    } catch {
      // ignore
    }
    return `${h}: ${describeDiff(want.get(h)!, got)}\n  last output: ${agents.get(h)!.output.slice(-5).join('\n  ')}`;
  });
  throw new Error(`agents not converged in ${timeoutMs} ms:\n${detail.join('\n')}`);
}

/** What became of the writes whose answer was lost, as counted by `resolveUnknowns`. */
export interface Unknowns {
  /** Creates without an answer: committed after all, or not. */
  created: number;
  notCreated: number;
  /** Deletes without an answer: done, or not. */
  deleted: number;
  notDeleted: number;
  /** Moves without an answer: done, or not. */
  moved: number;
  notMoved: number;
  /** Bulks without an answer: all in, or none. */
  bulksIn: number;
  bulksOut: number;
  /** How the writes that committed anyway were answered. */
  committedAnswers: string[];
}

/**
 * After the checks: settles the ledger's unknowns from the database (so that later rounds
 * check exact states again) and counts which way they went.
 */
export async function resolveUnknowns(databaseUrl: string, w: Workload): Promise<Unknowns> {
  const rows = await query<{ name: string; host: string; ip: string; mac: string }>(
    databaseUrl,
    `SELECT i.name, h.name AS host, host(i.ip) AS ip, i.mac::text AS mac
       FROM instances i JOIN hosts h ON h.id = i.host_id WHERE i.name LIKE $1`,
    [`${w.prefix}-%`],
  );
  const inDb = new Map(rows.map((r) => [r.name, r]));
  const out: Unknowns = {
    created: 0,
    notCreated: 0,
    deleted: 0,
    notDeleted: 0,
    moved: 0,
    notMoved: 0,
    bulksIn: 0,
    bulksOut: 0,
    committedAnswers: [],
  };
  for (const b of w.bulks) {
    if (b.outcome !== 'unknown') continue;
    const present = b.names.some((n) => inDb.has(n));
    if (present) {
      out.bulksIn++;
      out.committedAnswers.push(`bulk: ${b.answer}`);
    } else out.bulksOut++;
    b.outcome = present ? 'ok' : 'refused';
  }
  for (const rec of w.instances.values()) {
    if (rec.busy) continue;
    const row = inDb.get(rec.name);
    if (rec.exists === 'maybe' && rec.last === 'create' && rec.bulk === undefined) {
      if (row) {
        out.created++;
        out.committedAnswers.push(`create: ${rec.answer}`);
      } else out.notCreated++;
    }
    if (rec.exists === 'maybe' && rec.last === 'delete') {
      if (row) out.notDeleted++;
      else {
        out.deleted++;
        out.committedAnswers.push(`delete: ${rec.answer}`);
      }
    }
    if (rec.exists === 'yes' && rec.hosts.size > 1 && row) {
      const [first] = rec.hosts;
      if (row.host === first) out.notMoved++;
      else {
        out.moved++;
        out.committedAnswers.push(`move: ${rec.answer}`);
      }
    }
    rec.exists = row ? 'yes' : 'no';
    if (row) {
      rec.hosts = new Set([row.host]);
      rec.ip = row.ip;
      rec.mac = row.mac;
    }
  }
  return out;
}
