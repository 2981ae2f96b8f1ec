import { writeFileSync, renameSync } from 'node:fs';
import {
  RESOURCE_KINDS,
  resourceEquals,
  type Diff,
  type Resource,
} from '../../../../libs/engine/src/index.js';
import type { Dataplane, DriftItem, ResourceError } from './dataplane.js';

/**
 * Keeps the applied resources in a table in memory: what tests and benchmarks use to run
 * many agents in one process. Strict, so that protocol mistakes show: a create of an
 * existing key, an update or delete of a missing one, is reported as an error (and the
 * table still ends as the diff says).
 */
export class MemoryDataplane implements Dataplane {
  readonly name = 'memory' as const;

  /**
   * `dumpFile`: the table is written there (atomically, as a JSON array of resources) for
   * tests of agent processes: at most `dumpEveryMs` after a change, on `flush()` (which the
   * agent calls before acknowledging the last frame it has received, so an idle agent's
   * file is complete when its ack arrives) and on `close()`. A burst of diffs thus costs
   * one write of the table per `dumpEveryMs`, not one per diff.
   */
  constructor(
    private readonly dumpFile?: string,
    private readonly dumpEveryMs = 50,
  ) {}

  private dirty = false;
  private dumpTimer: NodeJS.Timeout | undefined;

  private readonly table = new Map<string, Resource>();
  /** What was applied, counted (bounded, unlike a log of every apply). */
  readonly counts = { applies: 0, syncs: 0, changed: 0 };

  /** A copy of what is applied. */
  resources(): Map<string, Resource> {
    return new Map(this.table);
  }

  apply(d: Diff): Promise<ResourceError[]> {
    const errors: ResourceError[] = [];
    for (const u of d.upserts) {
      const exists = this.table.has(u.key);
      if (u.op === 'create' && exists)
        errors.push({ key: u.key, message: 'create of an existing resource' });
      if (u.op !== 'create' && !exists)
        errors.push({ key: u.key, message: `${u.op} of a missing resource` });
      const { op: _op, ...r } = u;
      this.table.set(u.key, r);
    }
    for (const r of d.deletes) {
      if (!this.table.delete(r.key))
        errors.push({ key: r.key, message: 'delete of a missing resource' });
    }
    this.counts.applies++;
    this.counts.changed += d.upserts.length + d.deletes.length;
    this.dump();
    return Promise.resolve(errors);
  }

  sync(resources: readonly Resource[]): Promise<ResourceError[]> {
    const errors: ResourceError[] = [];
    const want = new Map<string, Resource>();
    for (const r of resources) {
      if (!RESOURCE_KINDS.includes(r.kind))
        errors.push({ key: r.key, message: `unknown kind ${r.kind}` });
      else want.set(r.key, r);
    }
    let changed = 0;
    for (const key of [...this.table.keys()]) {
      if (want.has(key)) continue;
      this.table.delete(key);
      changed++;
    }
    for (const [key, r] of want) {
      const had = this.table.get(key);
      if (!had || !resourceEquals(had, r)) changed++;
      this.table.set(key, r);
    }
    this.counts.syncs++;
    this.counts.changed += changed;
    this.dump();
    return Promise.resolve(errors);
  }

  checkDrift(desired: ReadonlyMap<string, Resource>): Promise<DriftItem[]> {
    const items: DriftItem[] = [];
    for (const [key, r] of desired) {
      const had = this.table.get(key);
      if (!had || !resourceEquals(had, r)) {
        items.push({ key, message: this.table.has(key) ? 'differs' : 'missing', repaired: true });
        this.table.set(key, r);
      }
    }
    for (const key of [...this.table.keys()]) {
      if (!desired.has(key)) {
        items.push({ key, message: 'not desired', repaired: true });
        this.table.delete(key);
      }
    }
    if (items.length > 0) this.dump();
    return Promise.resolve(items);
  }

  /** Marks the table changed; the file is written within `dumpEveryMs` (or on flush). */
  private dump(): void {
    if (!this.dumpFile) return;
    this.dirty = true;
    this.dumpTimer ??= setTimeout(() => this.writeDump(), this.dumpEveryMs);
  }

  private writeDump(): void {
    clearTimeout(this.dumpTimer);
    this.dumpTimer = undefined;
    if (!this.dirty || !this.dumpFile) return;
    this.dirty = false;
    writeFileSync(`${this.dumpFile}.tmp`, JSON.stringify([...this.table.values()]));
    renameSync(`${this.dumpFile}.tmp`, this.dumpFile);
  }

  flush(): Promise<void> {
    this.writeDump();
    return Promise.resolve();
  }

  /** Test hook: change the applied table behind the agent's back. */
  tamper(fn: (table: Map<string, Resource>) => void): void {
    fn(this.table);
  }

  close(): Promise<void> {
    this.writeDump();
    return Promise.resolve();
  }
}
