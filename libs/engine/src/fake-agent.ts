import type { DesiredState } from './compute.js';
import { inApplyOrder, stripOp, type Diff } from './diff.js';
import { deviceOf, devicesReferenced, type Resource } from './resources.js';

export class FakeAgentError extends Error {}

/**
 * A strict in-memory agent for tests: it applies diffs the way a kernel would judge them and
 * throws on create-of-existing, update/replace-of-missing, delete-of-missing, a resource
 * referencing a device that does not exist, and deleting a device something still uses.
 */
export class FakeAgent {
  private readonly table = new Map<string, Resource>();
  /** device name → number of resources defining it (exactly one when consistent). */
  private readonly devices = new Map<string, number>();

  constructor(initial: DesiredState = new Map()) {
    for (const u of this.order(initial)) this.put(u);
  }

  state(): DesiredState {
    return this.table;
  }

  apply(d: Diff): void {
    // Recreating a device drops what lives on it; those must be re-sent in the same diff.
    const stale = new Set<string>();
    for (const u of d.upserts) {
      stale.delete(u.key);
      const exists = this.table.has(u.key);
      if (u.op === 'create' && exists) throw new FakeAgentError(`create of existing ${u.key}`);
      if (u.op !== 'create' && !exists) throw new FakeAgentError(`${u.op} of missing ${u.key}`);
      if (exists) this.remove(u.key, false);
      this.put(stripOp(u));
      const dev = u.op === 'replace' ? deviceOf(u) : null;
      if (dev) {
        for (const other of this.table.values()) {
          if (devicesReferenced(other).includes(dev)) stale.add(other.key);
        }
      }
    }
    for (const r of d.deletes) {
      if (!this.table.has(r.key)) throw new FakeAgentError(`delete of missing ${r.key}`);
      stale.delete(r.key);
      this.remove(r.key, true);
    }
    if (stale.size) throw new FakeAgentError(`lost by device replace: ${[...stale].join(', ')}`);
  }

  private order(s: DesiredState): Resource[] {
    // Apply order (KIND_ORDER) so that references resolve while loading an initial state,
    // whatever the map's insertion order (the engine updates its maps in place).
    return inApplyOrder(s);
  }

  private put(r: Resource): void {
    for (const dev of devicesReferenced(r)) {
      if (!this.devices.has(dev)) throw new FakeAgentError(`${r.key} references missing ${dev}`);
    }
    const dev = deviceOf(r);
    if (dev) {
      if (this.devices.has(dev)) throw new FakeAgentError(`device ${dev} defined twice`);
      this.devices.set(dev, 1);
    }
    this.table.set(r.key, r);
  }

  private remove(key: string, checkUsers: boolean): void {
    const r = this.table.get(key)!;
    const dev = deviceOf(r);
    if (dev && checkUsers) {
      for (const other of this.table.values()) {
        if (other !== r && devicesReferenced(other).includes(dev)) {
          throw new FakeAgentError(`delete of ${key} while ${other.key} uses ${dev}`);
        }
      }
    }
    if (dev) this.devices.delete(dev);
    this.table.delete(key);
  }
}
