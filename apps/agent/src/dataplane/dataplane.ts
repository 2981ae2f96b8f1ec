import type { Diff, Resource } from '../../../../libs/engine/src/index.js';

import type { ResourceError } from '../../../../libs/protocol/src/index.js';

/** A resource the data plane could not apply, by key (the protocol's own shape). */
export type { ResourceError };

export interface DriftItem {
  readonly key: string;
  /** What differs between the kernel and the desired state, for humans. */
  readonly message: string;
  /** True when the data plane put it back. */
  readonly repaired: boolean;
}

/**
 * Where an agent puts the desired state: the Linux kernel (`linux`) or a table in memory
 * (`memory`, for tests and benchmarks). The agent core owns the protocol and the desired
 * state; a data plane only applies.
 *
 * Contract:
 * - `apply(diff)` applies upserts in order, then deletes in order (the order the engine
 *   produced), continuing past failures, and reports each failed resource. Upserts have
 *   replace semantics (`op` says create/update/replace); applying the same diff twice must
 *   be harmless (idempotent `replace` forms).
 * - `sync(resources)` makes the data plane hold exactly `resources` (a snapshot, or a
 *   re-sync after a restart) with the smallest change: it never tears down what is
 *   already right. Objects it owns (by name prefix) that are not desired are removed only
 *   from the first complete `sync` on.
 * - `checkDrift(desired)` reads the applied state back (the kernel for `linux`), compares
 *   it with `desired`, repairs what it can and reports what differed.
 * - `flush()` (optional) writes out whatever the data plane defers; the agent calls it
 *   before acknowledging the last frame it has received, so an idle agent's data plane is
 *   complete when its ack arrives.
 * - Nothing here removes anything because the controller went away.
 */
export interface Dataplane {
  readonly name: 'linux' | 'memory';
  apply(diff: Diff): Promise<ResourceError[]>;
  sync(resources: readonly Resource[]): Promise<ResourceError[]>;
  checkDrift(desired: ReadonlyMap<string, Resource>): Promise<DriftItem[]>;
  flush?(): Promise<void>;
  close(): Promise<void>;
}
