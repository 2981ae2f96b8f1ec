/**
 * Messages between the convergence benchmark (parent) and its agent fleet (a child process
 * forked with an IPC channel). Every request carries an `id`; the fleet answers each with
 * one reply carrying the same `id`.
 */

export interface FleetHost {
  name: string;
  token: string;
}

export interface FleetOptions {
  /** `ws://127.0.0.1:PORT/agent` */
  controller: string;
  hosts: FleetHost[];
  heartbeatMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
}

/** Totals over every agent of the fleet. */
export interface FleetStats {
  agents: number;
  /** Agents that applied something since their last disconnect. */
  connected: number;
  bytes: number;
  snapshots: number;
  diffs: number;
  errorFrames: number;
  /** Per-resource errors the memory data planes reported (a protocol mistake shows here). */
  resourceErrors: number;
  minApplied: number;
  maxApplied: number;
  rssBytes: number;
}

/** Wall-clock times are `performance.timeOrigin + performance.now()`, comparable across processes. */
export interface ResyncReport {
  /** Agents that disconnected and applied again since the mark. */
  resynced: number;
  missing: number;
  /** Per-agent time of the first apply after the reconnect, epoch ms. */
  firstAppliedAt: { min: number; p50: number; max: number };
  bytes: number;
  snapshots: number;
  diffs: number;
  resourceErrors: number;
}

export interface HostResources {
  host: string;
  appliedRevision: number;
  /** What the agent's memory data plane holds. */
  resources: { kind: string; key: string; spec: unknown }[];
}

export type FleetRequest =
  | { id: number; op: 'start'; options: FleetOptions }
  /** Resolves once every agent has applied something (its first sync). */
  | { id: number; op: 'awaitAllApplied'; timeoutMs: number }
  | { id: number; op: 'stats' }
  /** Starts tracking a controller restart: baselines, and "applied after a disconnect". */
  | { id: number; op: 'markRestart' }
  | { id: number; op: 'awaitResync'; timeoutMs: number }
  | { id: number; op: 'resources'; host: string }
  | { id: number; op: 'stop' };

export type FleetReply =
  { id: number; ok: true; result?: unknown } | { id: number; ok: false; error: string };

/** The wall clock both processes use: epoch milliseconds with sub-millisecond precision. */
export const wallNow = (): number => performance.timeOrigin + performance.now();
