import type { Tx } from '../revisions/revision-log.js';

/**
 * Free-range sets in PostgreSQL: the free values of a space (the addresses of a network or
 * of a host's blocks, the blocks of a network, the ids of a pool) as disjoint inclusive
 * ranges `[lo, hi]`, one row each, keyed by `(space key…, hi)`. Every operation is one
 * statement touching O(1) rows per value through the primary key: the lowest free value
 * is the first row of the index, the range holding `x` is the first row with `hi >= x`.
 * Nothing is kept in process, so a rolled-back transaction or savepoint leaves no trace.
 *
 * Callers serialise the writers of one space (the network's row lock for addresses and
 * blocks, the pool's row lock for ids); the constraints on the allocated rows themselves
 * (`UNIQUE (network_id, ip)`, the blocks' exclusion constraint, `UNIQUE (vlan_id)`) stay
 * the backstop.
 *
 * Taking values from the bottom of a range only raises its `lo`, which no index covers: a
 * heap-only update.
 */
export interface Space {
  readonly table: 'free_addresses' | 'free_blocks' | 'free_ids';
  /** Key columns and their SQL types; `key` holds their values. */
  readonly cols: readonly string[];
  readonly types: readonly string[];
  readonly key: readonly unknown[];
}

/** The range set a value was returned to, after merging with its neighbours. */
export interface Range {
  lo: number;
  hi: number;
}

/** `f.c1 = $1::t1 AND f.c2 = $2::t2 …` */
function keyOf(s: Space, alias: string): string {
  return s.cols.map((c, i) => `${alias}.${c} = $${i + 1}::${s.types[i]}`).join(' AND ');
}

function keyValues(s: Space): string {
  return s.cols.map((_, i) => `$${i + 1}::${s.types[i]}`).join(', ');
}

/**
 * Removes the values of CTE `hit(x, rlo, rhi)` — distinct free values, each with the range
 * holding it — from their ranges: each hit range keeps its row as the piece above its
 * highest value (or is deleted) and gains a row for every non-empty piece below a value.
 * The new rows' keys lie strictly inside the old range, so no statement order can clash.
 */
function removeHits(s: Space, hitCtes: string, extra: string): string {
  const k = keyOf(s, 'f');
  return `WITH ${hitCtes},
    pieces AS (
      SELECT x, rlo, rhi, coalesce(lag(x) OVER w + 1, rlo) AS plo,
             x = max(x) OVER (PARTITION BY rhi) AS last
        FROM hit WINDOW w AS (PARTITION BY rhi ORDER BY x)),
    ins AS (INSERT INTO ${s.table} (${s.cols.join(', ')}, lo, hi)
            SELECT ${keyValues(s)}, plo, x - 1 FROM pieces WHERE plo < x),
    upd AS (UPDATE ${s.table} f SET lo = p.x + 1 FROM pieces p
             WHERE ${k} AND f.hi = p.rhi AND p.last AND p.x < p.rhi),
    del AS (DELETE FROM ${s.table} f USING pieces p
             WHERE ${k} AND f.hi = p.rhi AND p.last AND p.x = p.rhi)${extra}
    SELECT hit.x::text AS x FROM hit ORDER BY hit.x`;
}

/**
 * Extra CTEs run in the same statement; they may read `hit(x)`. Their parameters are
 * numbered from `first` on.
 */
export type Extra = (first: number) => { sql: string; params: unknown[] };

function withExtra(
  s: Space,
  own: number,
  extra: Extra | undefined,
): { sql: string; params: unknown[] } {
  if (!extra) return { sql: '', params: [] };
  const e = extra(s.key.length + own + 1);
  return { sql: `,\n    ${e.sql}`, params: e.params };
}

/**
 * Takes the `n` lowest free values, skipping `exclude` (which stay free). Reads at most
 * `n + exclude.length` ranges. Returns the values taken, ascending; fewer than `n` means
 * the space is exhausted.
 */
export async function takeLowest(
  tx: Tx,
  s: Space,
  n: number,
  exclude: readonly number[] = [],
  extra?: Extra,
): Promise<number[]> {
  if (n <= 0) return [];
  const k = s.key.length;
  const m = `$${k + 1}::bigint`;
  const e = withExtra(s, 3, extra);
  const sql = removeHits(
    s,
    `r AS (
      SELECT lo AS rlo, hi AS rhi, (sum(hi - lo + 1) OVER (ORDER BY hi) - (hi - lo + 1))::bigint AS before
        FROM (SELECT lo, hi FROM ${s.table} f WHERE ${keyOf(s, 'f')} ORDER BY hi LIMIT ${m}) s),
    g AS (SELECT generate_series(rlo, least(rhi, rlo + ${m} - before - 1)) AS x, rlo, rhi
            FROM r WHERE before < ${m}),
    hit AS (SELECT x, rlo, rhi FROM g WHERE x <> ALL($${k + 3}::bigint[]) ORDER BY x LIMIT $${k + 2}::bigint)`,
    e.sql,
  );
  const rows = await tx.query<{ x: string }>(sql, [
    ...s.key,
    n + exclude.length,
    n,
    exclude,
    ...e.params,
  ]);
  return rows.map((r) => Number(r.x));
}

/** Takes the given values where free. Returns those that were free (and are now taken). */
export async function take(
  tx: Tx,
  s: Space,
  values: readonly number[],
  extra?: Extra,
): Promise<number[]> {
  if (values.length === 0) return [];
  const k = s.key.length;
  const e = withExtra(s, 1, extra);
  const sql = removeHits(
    s,
    `p AS (SELECT DISTINCT unnest($${k + 1}::bigint[]) AS x),
    hit AS (
      SELECT p.x, r.lo AS rlo, r.hi AS rhi FROM p CROSS JOIN LATERAL (
        SELECT lo, hi FROM ${s.table} f WHERE ${keyOf(s, 'f')} AND f.hi >= p.x ORDER BY f.hi LIMIT 1
      ) r WHERE r.lo <= p.x)`,
    e.sql,
  );
  const rows = await tx.query<{ x: string }>(sql, [...s.key, values, ...e.params]);
  return rows.map((r) => Number(r.x));
}

/**
 * Returns `x` to the space, merged with the ranges right below and above it. Returns the
 * range that now holds it (a no-op when `x` was already free).
 */
export async function give(tx: Tx, s: Space, x: number): Promise<Range> {
  const k = keyOf(s, 'f');
  const v = `$${s.key.length + 1}::bigint`;
  const [row] = await tx.query<{ lo: string; hi: string }>(
    `WITH b AS (SELECT lo FROM ${s.table} f WHERE ${k} AND f.hi = ${v} - 1),
      a AS (SELECT lo, hi FROM ${s.table} f WHERE ${k} AND f.hi >= ${v} ORDER BY f.hi LIMIT 1),
      st AS (SELECT (SELECT lo FROM b) AS blo, (SELECT lo FROM a) AS alo, (SELECT hi FROM a) AS ahi),
      -- free already: nothing to do; joins the range above: it grows down (absorbing the one below)
      isfree AS (SELECT coalesce(alo <= ${v}, false) AS yes, alo IS NOT DISTINCT FROM ${v} + 1 AS up, blo IS NOT NULL AS down FROM st),
      d AS (DELETE FROM ${s.table} f USING isfree WHERE ${k} AND f.hi = ${v} - 1 AND up AND down),
      u1 AS (UPDATE ${s.table} f SET lo = coalesce(st.blo, ${v}) FROM st, isfree
              WHERE ${k} AND f.hi = st.ahi AND up),
      u2 AS (UPDATE ${s.table} f SET hi = ${v} FROM isfree
              WHERE ${k} AND f.hi = ${v} - 1 AND down AND NOT up AND NOT yes),
      i AS (INSERT INTO ${s.table} (${s.cols.join(', ')}, lo, hi)
            SELECT ${keyValues(s)}, ${v}, ${v} FROM isfree WHERE NOT down AND NOT up AND NOT yes)
    SELECT (CASE WHEN yes THEN alo ELSE coalesce(blo, ${v}) END)::text AS lo,
           (CASE WHEN yes OR up THEN ahi ELSE ${v} END)::text AS hi
      FROM st, isfree`,
    [...s.key, x],
  );
  return { lo: Number(row.lo), hi: Number(row.hi) };
}

/** Adds ranges known to be free and disjoint from the space's (a new network or block). */
export async function addRanges(tx: Tx, s: Space, ranges: readonly Range[]): Promise<void> {
  const some = ranges.filter((r) => r.lo <= r.hi);
  if (some.length === 0) return;
  const k = s.key.length;
  await tx.query(
    `INSERT INTO ${s.table} (${s.cols.join(', ')}, lo, hi)
     SELECT ${keyValues(s)}, lo, hi FROM unnest($${k + 1}::bigint[], $${k + 2}::bigint[]) AS r(lo, hi)`,
    [...s.key, some.map((r) => r.lo), some.map((r) => r.hi)],
  );
}

/** A family of spaces: a free-range table and its key columns, without a key. */
export type Spaces = Omit<Space, 'key'>;

/** One taker of `takeLowestMany`: `n` values from the space `key`, skipping `exclude`. */
export interface Want {
  readonly key: readonly unknown[];
  readonly n: number;
  readonly exclude?: readonly number[];
}

/**
 * `takeLowest` for many takers in one statement, whatever their number: each gets the `n`
 * lowest values of its space that are free and not in its `exclude`, fewer when the space
 * runs out. Takers of the same space are served one after another in array order, exactly
 * as successive `takeLowest` calls would serve them (a later one gets what is left).
 * Returns the values of each taker, ascending, in the order of `wants`.
 *
 * The statement reads, per space, at most as many ranges as its takers' `n + exclude`
 * (its first index rows, through a LATERAL join per space) and cuts them into candidate
 * values. Where the takers of a space skip the same values (one taker, or a bulk's hosts
 * skipping the bulk's explicit values), the k-th candidate left goes to the taker whose
 * share of the running count holds k (window functions, no recursion); elsewhere a
 * recursion deals the candidates out, one step per taker of a space, each taking its lowest
 * from what the earlier ones left. The values dealt out are then removed from their ranges
 * per space as `removeHits` does. `extra` runs in the same statement and may read
 * `hit(i, key…, x)`, `i` the taker's index in `wants`; its parameters are numbered from its
 * argument on.
 */
export async function takeLowestMany(
  tx: Tx,
  s: Spaces,
  wants: readonly Want[],
  extra?: Extra,
): Promise<number[][]> {
  const out = wants.map((): number[] => []);
  const live = [...wants.keys()].filter((i) => wants[i].n > 0);
  if (live.length === 0) return out;
  const k = s.cols.length;
  const cols = (alias?: string) => s.cols.map((c) => (alias ? `${alias}.${c}` : c)).join(', ');
  const same = (a: string, b: string) => s.cols.map((c) => `${a}.${c} = ${b}.${c}`).join(' AND ');
  const keyArrays = s.types.map((t, c) => `$${c + 2}::${t}[]`).join(', ');
  const exI: number[] = [];
  const exX: number[] = [];
  for (const i of live) {
    for (const x of wants[i].exclude ?? []) {
      exI.push(i);
      exX.push(x);
    }
  }
  const e = extra ? extra(k + 5) : { sql: '', params: [] };
  const sql = `WITH RECURSIVE
    q AS (SELECT q.*, row_number() OVER (PARTITION BY ${cols('q')} ORDER BY q.i) AS j,
                 sum(q.n) OVER (PARTITION BY ${cols('q')} ORDER BY q.i) - q.n AS before
            FROM unnest($1::int[], ${keyArrays}, $${k + 2}::bigint[]) AS q(i, ${cols()}, n)),
    qe AS (SELECT q.*, coalesce(e.xs, '{}') AS xs FROM q LEFT JOIN (
             SELECT i, array_agg(DISTINCT x ORDER BY x) AS xs
               FROM unnest($${k + 3}::int[], $${k + 4}::bigint[]) AS e(i, x) GROUP BY i) e ON e.i = q.i),
    sp AS (SELECT ${cols()}, sum(n + cardinality(xs))::bigint AS lim, min(xs) = max(xs) AS uniform, min(xs) AS xs
             FROM qe GROUP BY ${cols()}),
    r AS (
      SELECT ${cols('sp')}, sp.lim, sp.uniform, sp.xs, s.lo AS rlo, s.hi AS rhi,
             (sum(s.hi - s.lo + 1) OVER (PARTITION BY ${cols('sp')} ORDER BY s.hi) - (s.hi - s.lo + 1))::bigint AS before
        FROM sp CROSS JOIN LATERAL (
          SELECT lo, hi FROM ${s.table} f WHERE ${same('f', 'sp')} ORDER BY f.hi LIMIT sp.lim) s),
    c AS (SELECT ${cols()}, uniform, xs, rlo, rhi, generate_series(rlo, least(rhi, rlo + lim - before - 1)) AS x
            FROM r WHERE before < lim),
    -- spaces whose takers all skip the same values: the k-th candidate left goes to the taker
    -- whose share of the running count holds k
    cu AS (SELECT ${cols()}, x, rlo, rhi, row_number() OVER (PARTITION BY ${cols()} ORDER BY x) AS k
             FROM c WHERE uniform AND x <> ALL(xs)),
    hu AS (SELECT q.i, ${cols('cu')}, cu.x, cu.rlo, cu.rhi FROM cu JOIN qe q
               ON ${same('q', 'cu')} AND cu.k > q.before AND cu.k <= q.before + q.n),
    -- other spaces: one taker after another, each taking its lowest from what is left
    deal (i, ${cols()}, j, rest, mine) AS (
      SELECT -1, ${cols()}, 0::bigint, array_agg(x ORDER BY x), '{}'::bigint[] FROM c WHERE NOT uniform GROUP BY ${cols()}
      UNION ALL
      SELECT q.i, ${cols('d')}, q.j, t.rest, t.mine
        FROM deal d JOIN qe q ON ${same('q', 'd')} AND q.j = d.j + 1
        CROSS JOIN LATERAL (
          SELECT coalesce(array_agg(x ORDER BY x) FILTER (WHERE pick), '{}') AS mine,
                 coalesce(array_agg(x ORDER BY x) FILTER (WHERE NOT pick), '{}') AS rest
            FROM (SELECT x, x <> ALL(q.xs) AND count(*) FILTER (WHERE x <> ALL(q.xs)) OVER (ORDER BY x) <= q.n AS pick
                    FROM unnest(d.rest) AS u(x)) z) t),
    hit AS (SELECT * FROM hu UNION ALL
            SELECT m.i, ${cols('c')}, c.x, c.rlo, c.rhi
              FROM (SELECT d.i, ${cols('d')}, unnest(d.mine) AS x FROM deal d) m
              JOIN c ON ${same('c', 'm')} AND c.x = m.x),
    pieces AS (
      SELECT ${cols()}, x, rlo, rhi, coalesce(lag(x) OVER w + 1, rlo) AS plo,
             x = max(x) OVER (PARTITION BY ${cols()}, rhi) AS last
        FROM hit WINDOW w AS (PARTITION BY ${cols()}, rhi ORDER BY x)),
    ins AS (INSERT INTO ${s.table} (${cols()}, lo, hi) SELECT ${cols()}, plo, x - 1 FROM pieces WHERE plo < x),
    upd AS (UPDATE ${s.table} f SET lo = p.x + 1 FROM pieces p
             WHERE ${same('f', 'p')} AND f.hi = p.rhi AND p.last AND p.x < p.rhi),
    del AS (DELETE FROM ${s.table} f USING pieces p
             WHERE ${same('f', 'p')} AND f.hi = p.rhi AND p.last AND p.x = p.rhi)${e.sql ? `,\n    ${e.sql}` : ''}
    SELECT hit.i, hit.x::text AS x FROM hit ORDER BY hit.i, hit.x`;
  const rows = await tx.query<{ i: number; x: string }>(sql, [
    live,
    ...s.cols.map((_, c) => live.map((i) => wants[i].key[c])),
    live.map((i) => wants[i].n),
    exI,
    exX,
    ...e.params,
  ]);
  for (const r of rows) out[r.i].push(Number(r.x));
  return out;
}
