import { RESOURCE_KINDS, type Resource } from '../../engine/src/index.js';
import {
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  type AgentFrame,
  type ControllerFrame,
  type Frame,
} from './messages.js';
import { MAX_PARTS } from './parts.js';

/**
 * Validates a received frame. Never throws: returns the frame or a message saying what is
 * wrong with it, so that a malformed frame gets an error reply, never a crash.
 */
export type Parsed<T> = { ok: true; frame: T } | { ok: false; error: string; version?: boolean };

const KINDS = new Set<string>(RESOURCE_KINDS);
const OPS = new Set(['create', 'update', 'replace']);

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isRevision = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isStr = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length <= max;

function checkResource(r: unknown, withOp: boolean): string | null {
  if (!isObj(r)) return 'a resource must be an object';
  if (!isStr(r.kind) || !KINDS.has(r.kind))
    return `unknown resource kind ${JSON.stringify(r.kind)}`;
  if (!isStr(r.key, 512) || !r.key.startsWith(`${r.kind}:`))
    return `resource key must start with "${String(r.kind)}:"`;
  if (!isObj(r.spec)) return `resource ${r.key} has no spec object`;
  if (withOp && !OPS.has(r.op as string)) return `upsert ${r.key} has no valid op`;
  return null;
}

function checkResources(v: unknown, field: string, withOp: boolean): string | null {
  if (!Array.isArray(v)) return `${field} must be an array`;
  for (const [i, r] of v.entries()) {
    const e = checkResource(r, withOp);
    if (e) return `${field}[${i}]: ${e}`;
  }
  return null;
}

function checkErrors(v: unknown, field: string, withRepaired: boolean): string | null {
  if (!Array.isArray(v) || v.length > 100_000) return `${field} must be an array`;
  for (const [i, e] of v.entries()) {
    if (!isObj(e) || !isStr(e.key, 512) || !isStr(e.message))
      return `${field}[${i}] must be { key, message }`;
    if (withRepaired && typeof e.repaired !== 'boolean')
      return `${field}[${i}].repaired must be a boolean`;
  }
  return null;
}

/** `part`/`parts` of a frame in parts (both or neither; parts.ts). */
function checkParts(f: Record<string, unknown>): string | null {
  if (f.part === undefined && f.parts === undefined) return null;
  if (!Number.isSafeInteger(f.parts) || (f.parts as number) < 1 || (f.parts as number) > MAX_PARTS)
    return `${String(f.type)}.parts must be an integer in 1-${MAX_PARTS}`;
  if (
    !Number.isSafeInteger(f.part) ||
    (f.part as number) < 0 ||
    (f.part as number) >= (f.parts as number)
  )
    return `${String(f.type)}.part must be an integer below parts`;
  return null;
}

function check(f: Record<string, unknown>): string | null {
  switch (f.type) {
    case 'hello':
      if (!isStr(f.host, 63) || f.host.length === 0) return 'hello.host must be the host name';
      if (!isStr(f.token, 256)) return 'hello.token must be a string';
      if (!isRevision(f.appliedRevision))
        return 'hello.appliedRevision must be a non-negative integer';
      if (!isStr(f.agentVersion, 64)) return 'hello.agentVersion must be a string';
      if (f.cluster !== undefined && !isStr(f.cluster, 64)) return 'hello.cluster must be a string';
      return null;
    case 'ack':
      return isRevision(f.revision) ? null : 'ack.revision must be a non-negative integer';
    case 'status':
      if (!isRevision(f.revision)) return 'status.revision must be a non-negative integer';
      return checkErrors(f.errors, 'status.errors', false);
    case 'heartbeat':
      return isRevision(f.appliedRevision)
        ? null
        : 'heartbeat.appliedRevision must be a non-negative integer';
    case 'drift':
      if (!isRevision(f.revision)) return 'drift.revision must be a non-negative integer';
      return checkErrors(f.items, 'drift.items', true);
    case 'snapshot':
      if (!isStr(f.cluster, 64)) return 'snapshot.cluster must be a string';
      if (!isRevision(f.revision)) return 'snapshot.revision must be a non-negative integer';
      return checkParts(f) ?? checkResources(f.resources, 'snapshot.resources', false);
    case 'diff':
      if (!isStr(f.cluster, 64)) return 'diff.cluster must be a string';
      if (
        !isRevision(f.fromRevision) ||
        !isRevision(f.toRevision) ||
        f.toRevision < f.fromRevision
      ) {
        return 'diff needs fromRevision <= toRevision, non-negative integers';
      }
      return (
        checkParts(f) ??
        checkResources(f.upserts, 'diff.upserts', true) ??
        checkResources(f.deletes, 'diff.deletes', false)
      );
    case 'error':
      return isStr(f.code, 64) && isStr(f.message) ? null : 'error needs code and message';
    default:
      return `unknown frame type ${JSON.stringify(f.type)}`;
  }
}

const AGENT_TYPES = new Set(['hello', 'ack', 'status', 'heartbeat', 'drift']);

function parseAny(data: string | Buffer, allowed: (t: string) => boolean): Parsed<Frame> {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (size > MAX_FRAME_BYTES)
    return { ok: false, error: `frame of ${size} bytes exceeds ${MAX_FRAME_BYTES}` };
  let v: unknown;
  try {
    v = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    return { ok: false, error: 'frame is not valid JSON' };
  }
  if (!isObj(v)) return { ok: false, error: 'frame must be a JSON object' };
  if (v.v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      error: `unsupported protocol version ${JSON.stringify(v.v)} (this side speaks ${PROTOCOL_VERSION})`,
      version: true,
    };
  }
  if (!isStr(v.type, 32) || !allowed(v.type))
    return { ok: false, error: `unexpected frame type ${JSON.stringify(v.type)}` };
  const e = check(v);
  return e ? { ok: false, error: e } : { ok: true, frame: v as unknown as Frame };
}

/** Frames an agent may send. */
export function parseAgentFrame(data: string | Buffer): Parsed<AgentFrame> {
  return parseAny(data, (t) => AGENT_TYPES.has(t)) as Parsed<AgentFrame>;
}

/** Frames a controller may send. */
export function parseControllerFrame(data: string | Buffer): Parsed<ControllerFrame> {
  return parseAny(data, (t) => !AGENT_TYPES.has(t)) as Parsed<ControllerFrame>;
}

export type { Resource };
