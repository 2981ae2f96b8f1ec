import type { DesiredState } from './compute.js';
import {
  devicesReferenced,
  deviceOf,
  KIND_ORDER,
  needsReplace,
  type Resource,
} from './resources.js';

/**
 * How an upsert is applied. All three carry the complete desired spec (replace semantics:
 * the agent makes the kernel object equal to the spec, it never merges).
 * - `create`: the key is new.
 * - `update`: the object exists and can be changed in place (idempotent `replace` forms:
 *   `ip route replace`, `ip link set`, `bridge fdb replace`, re-rendered BIRD/nft config).
 *   Also used to re-send an unchanged resource whose device is being replaced.
 * - `replace`: a field that the kernel cannot change in place changed (e.g. the VXLAN
 *   `local`): delete the object and create it again. Everything living on that device
 *   follows later in the same diff as `update`s.
 */
export type UpsertOp = 'create' | 'update' | 'replace';

export type Upsert = Resource & { readonly op: UpsertOp };

/**
 * A typed, keyed, ordered diff. Apply ALL `upserts` in order, then ALL `deletes` in order.
 * Upserts are sorted by ascending KIND_ORDER (devices before ports, FDB, neighbours and
 * routes), deletes by descending KIND_ORDER (dependents first). Deletes carry the full old
 * resource so the agent can render the removal without looking anything up.
 */
export interface Diff {
  readonly upserts: readonly Upsert[];
  readonly deletes: readonly Resource[];
}

export const EMPTY_DIFF: Diff = { upserts: [], deletes: [] };

export function isEmptyDiff(d: Diff): boolean {
  return d.upserts.length === 0 && d.deletes.length === 0;
}

/** Structural equality of plain JSON values, independent of object key order. */
export function jsonEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEquals(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  let n = 0;
  for (const k in ao) {
    if (!Object.prototype.hasOwnProperty.call(bo, k) || !jsonEquals(ao[k], bo[k])) return false;
    n++;
  }
  for (const k in bo) if (Object.prototype.hasOwnProperty.call(bo, k)) n--;
  return n === 0;
}

/** Cheap, canonical resource equality (identity short-cut, then structural on the spec). */
export function resourceEquals(a: Resource, b: Resource): boolean {
  return a === b || (a.kind === b.kind && a.key === b.key && jsonEquals(a.spec, b.spec));
}

/**
 * Canonical serialisation of a resource (object keys sorted at every level): equal
 * resources have equal fingerprints whatever their key order, e.g. after a jsonb round-trip.
 * Suitable for hashing or storing a state's digest.
 */
export function fingerprint(r: Resource): string {
  return canonicalJson(r);
}

function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

function byApplyOrder(a: Resource, b: Resource): number {
  return KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** Resources in apply order (e.g. for a snapshot an agent applies from scratch). */
export function inApplyOrder(state: DesiredState): Resource[] {
  return [...state.values()].sort(byApplyOrder);
}

/** The ordered changes that turn state `a` into state `b` (`diffAt` over every key). */
export function diff(a: DesiredState, b: DesiredState): Diff {
  const changed = new Map<string, Resource | undefined>();
  for (const key of b.keys()) changed.set(key, a.get(key));
  for (const [key, ra] of a) if (!b.has(key)) changed.set(key, ra);
  return diffAt(changed, b);
}

/** Applies a diff to a state, returning a new state (upserts in order, then deletes). */
export function applyDiff(a: DesiredState, d: Diff): Map<string, Resource> {
  const out = new Map(a);
  for (const u of d.upserts) out.set(u.key, stripOp(u));
  for (const r of d.deletes) out.delete(r.key);
  return out;
}

/** The resource of an upsert, without its `op`. */
export function stripOp(u: Upsert): Resource {
  return { kind: u.kind, key: u.key, spec: u.spec } as Resource;
}

/** True when two states hold the same resources. */
export function statesEqual(a: DesiredState, b: DesiredState): boolean {
  if (a.size !== b.size) return false;
  for (const [k, ra] of a) {
    const rb = b.get(k);
    if (!rb || !resourceEquals(ra, rb)) return false;
  }
  return true;
}

/**
 * `diff(a, b)` when `a` and `b` differ at most at the keys of `changed`, which maps each of
 * them to its value in `a` (undefined: absent from `a`). The incremental engine records the
 * previous value of every key it writes during an apply, so a host's diff costs what
 * changed, not the size of its state (except when a device is replaced: then everything
 * living on it is re-sent, as `diff` does).
 */
export function diffAt(changed: ReadonlyMap<string, Resource | undefined>, b: DesiredState): Diff {
  const upserts: Upsert[] = [];
  const deletes: Resource[] = [];
  let replacedDevices: Set<string> | null = null;
  for (const [key, ra] of changed) {
    const rb = b.get(key);
    if (!rb) {
      if (ra) deletes.push(ra);
    } else if (!ra) {
      upserts.push({ ...rb, op: 'create' });
    } else if (!resourceEquals(ra, rb)) {
      const replace = needsReplace(ra, rb);
      upserts.push({ ...rb, op: replace ? 'replace' : 'update' });
      const dev = replace ? deviceOf(rb) : null;
      if (dev) (replacedDevices ??= new Set()).add(dev);
    }
  }
  if (replacedDevices) {
    // Recreating a device drops what lives on it (FDB, neighbours, routes, enslaved ports):
    // re-send those that are otherwise unchanged.
    const sent = new Set(upserts.map((u) => u.key));
    for (const rb of b.values()) {
      if (sent.has(rb.key)) continue;
      if (devicesReferenced(rb).some((d) => replacedDevices.has(d))) {
        upserts.push({ ...rb, op: 'update' });
      }
    }
  }
  upserts.sort(byApplyOrder);
  deletes.sort((x, y) => byApplyOrder(y, x));
  return { upserts, deletes };
}
