import type { Resource, Upsert } from '../../engine/src/index.js';

/**
 * The agent protocol (SPEC §4): JSON text frames over WebSocket `/agent`, each with the
 * protocol version `v` and a `type`. Both sides validate every frame with `parseFrame`.
 *
 *   agent → controller: hello, ack, status, heartbeat, drift
 *   controller → agent: snapshot, diff, error
 *
 * Revisions are the controller's global revision numbers. A host's agent only hears about
 * revisions that change its desired state, so consecutive diffs it gets may skip numbers:
 * a diff applies when the agent's applied revision is at least `fromRevision`.
 */
export const PROTOCOL_VERSION = 1;

/**
 * Largest frame either side accepts, bytes. A snapshot or diff over it is sent in parts
 * (parts.ts), so a state of any size gets through in frames of at most this size.
 */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;

/**
 * What an agent reports is bounded: at most `errors` entries per status or drift frame
 * (the agent sends the first ones and one summary entry `{ key: '*', message: '… more' }`),
 * each message at most `messageChars` characters. The controller stores no more than this.
 */
export const REPORT_LIMITS = { errors: 100, messageChars: 1024 } as const;

/** WebSocket close codes used by the controller. */
export const CLOSE = {
  /** Bad or missing credentials, or the first frame was not a valid hello. */
  POLICY: 1008,
  /** Frame over MAX_FRAME_BYTES. */
  TOO_BIG: 1009,
  /** Another agent connected for the same host; this one is replaced. */
  REPLACED: 4001,
  /** No hello within the hello timeout. */
  HELLO_TIMEOUT: 4002,
  /** Silent past the heartbeat timeout. */
  SILENT: 4003,
  /** Unsupported protocol version. */
  VERSION: 4004,
  /** Controller shutting down: reconnect elsewhere or later. */
  GOING_AWAY: 1001,
} as const;

export interface ResourceError {
  readonly key: string;
  readonly message: string;
}

export interface Hello {
  readonly v: number;
  readonly type: 'hello';
  readonly host: string;
  readonly token: string;
  readonly appliedRevision: number;
  readonly agentVersion: string;
  /** The cluster id that came with the agent's applied state (absent without state). */
  readonly cluster?: string;
}

export interface Snapshot {
  readonly v: number;
  readonly type: 'snapshot';
  /** The controller's cluster id: the agent keeps it with the state. */
  readonly cluster: string;
  readonly revision: number;
  /** The host's whole desired state, in apply order. */
  readonly resources: readonly Resource[];
  /** A state too big for one frame comes in parts (parts.ts): this one's index, and how many. */
  readonly part?: number;
  readonly parts?: number;
}

export interface DiffFrame {
  readonly v: number;
  readonly type: 'diff';
  readonly cluster: string;
  readonly fromRevision: number;
  readonly toRevision: number;
  /** Apply all upserts in order, then all deletes in order. */
  readonly upserts: readonly Upsert[];
  readonly deletes: readonly Resource[];
  readonly part?: number;
  readonly parts?: number;
}

export interface Ack {
  readonly v: number;
  readonly type: 'ack';
  readonly revision: number;
}

export interface Status {
  readonly v: number;
  readonly type: 'status';
  readonly revision: number;
  readonly errors: readonly ResourceError[];
}

export interface Heartbeat {
  readonly v: number;
  readonly type: 'heartbeat';
  readonly appliedRevision: number;
}

export interface Drift {
  readonly v: number;
  readonly type: 'drift';
  readonly revision: number;
  /** What the agent found different from the desired state (and repaired, if it could). */
  readonly items: readonly (ResourceError & { readonly repaired: boolean })[];
}

export interface ErrorFrame {
  readonly v: number;
  readonly type: 'error';
  readonly code: 'bad_frame' | 'bad_revision' | 'unexpected';
  readonly message: string;
}

export type AgentFrame = Hello | Ack | Status | Heartbeat | Drift;
export type ControllerFrame = Snapshot | DiffFrame | ErrorFrame;
export type Frame = AgentFrame | ControllerFrame;

/** A frame before `encode` stamps the version on it. */
export type Unversioned<T> = T extends unknown ? Omit<T, 'v'> : never;

/** Stamps the protocol version on a frame and serialises it. */
export function encode(frame: Unversioned<Frame>): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, ...frame });
}
