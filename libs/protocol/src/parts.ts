import type { Resource, Upsert } from '../../engine/src/index.js';
import {
  encode,
  MAX_FRAME_BYTES,
  type DiffFrame,
  type Snapshot,
  type Unversioned,
} from './messages.js';

/**
 * Large states in frames that fit (SPEC §4, "parts"). A snapshot or diff whose encoding is
 * over `MAX_FRAME_BYTES` is sent as consecutive frames of the same type and revisions, each
 * with `part` (0-based) and `parts`, carrying consecutive slices of its resources (a diff's
 * upserts and deletes each keep their order: concatenating the parts' lists gives the
 * whole). The receiver applies nothing until the last part arrived; any other frame in
 * between, or a part out of order, abandons the assembly (the agent then resyncs).
 */
export const MAX_PARTS = 4096;

type Whole = Unversioned<Snapshot> | Unversioned<DiffFrame>;
type Part = Whole;

const itemsOf = (f: Whole): number =>
  f.type === 'snapshot' ? f.resources.length : f.upserts.length + f.deletes.length;

/** The slice [from, to) of a frame's items, as a frame of its own. */
function slice(f: Whole, from: number, to: number): Whole {
  if (f.type === 'snapshot') return { ...f, resources: f.resources.slice(from, to) };
  const u = f.upserts.length;
  return {
    ...f,
    upserts: f.upserts.slice(Math.min(from, u), Math.min(to, u)),
    deletes: f.deletes.slice(Math.max(0, from - u), Math.max(0, to - u)),
  };
}

/**
 * Encodes a snapshot or diff as the frames to send: one when it fits `limit` bytes, parts
 * of roughly equal item count otherwise (a part still too big is halved again). `text` is
 * the whole frame's encoding when the caller already has it.
 */
export function encodeInParts(
  frame: Whole,
  limit = MAX_FRAME_BYTES,
  text = encode(frame),
): string[] {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most frames fit without being measured.
  if (text.length * 3 <= limit || Buffer.byteLength(text) <= limit) return [text];
  const n = itemsOf(frame);
  const pieces: [number, number][] = [];
  const want = Math.min(n, Math.ceil((Buffer.byteLength(text) * 1.25) / limit));
  for (let i = 0; i < want; i++)
    pieces.push([Math.floor((i * n) / want), Math.floor(((i + 1) * n) / want)]);
  const out: Whole[] = [];
  while (pieces.length > 0) {
    const [from, to] = pieces.shift()!;
    const part = slice(frame, from, to);
    // Measured without the part fields (a few bytes, allowed for in `limit / 1.25`).
    if (to - from > 1 && Buffer.byteLength(encode(part)) > limit * 0.95) {
      const mid = Math.floor((from + to) / 2);
      pieces.unshift([from, mid], [mid, to]);
      continue;
    }
    out.push(part);
  }
  if (out.length > MAX_PARTS)
    throw new Error(`a state of ${n} resources needs over ${MAX_PARTS} parts`);
  return out.map((p, i) => encode({ ...p, part: i, parts: out.length }));
}

/** Collects the parts of one snapshot or diff; see `encodeInParts`. */
export class PartAssembler {
  private current:
    | { first: Part; next: number; items: (Resource | Upsert)[][]; deletes: Resource[][] }
    | undefined;

  /** True while parts of a frame are awaited. */
  get assembling(): boolean {
    return this.current !== undefined;
  }

  reset(): void {
    this.current = undefined;
  }

  /**
   * Takes a received snapshot or diff: returns the whole frame when it is complete (a frame
   * without parts is complete by itself), `null` while parts are awaited, or an error.
   */
  add(f: Part): { frame: Whole } | null | { error: string } {
    const parts = f.parts ?? 1;
    const part = f.part ?? 0;
    if (parts === 1) {
      if (this.current) {
        this.current = undefined;
        return { error: `a ${f.type} arrived before the last part of the previous one` };
      }
      return { frame: f };
    }
    if (part === 0) {
      if (this.current) {
        this.current = undefined;
        return { error: 'a new frame in parts began before the previous one ended' };
      }
      this.current = { first: f, next: 0, items: [], deletes: [] };
    }
    const c = this.current;
    if (!c || part !== c.next || parts !== c.first.parts || !sameFrame(c.first, f)) {
      this.current = undefined;
      return { error: `part ${part} of ${parts} out of order` };
    }
    if (f.type === 'snapshot') c.items.push(f.resources as Resource[]);
    else {
      c.items.push(f.upserts as Upsert[]);
      c.deletes.push(f.deletes as Resource[]);
    }
    c.next++;
    if (c.next < parts) return null;
    this.current = undefined;
    const { part: _p, parts: _n, ...first } = c.first;
    if (first.type === 'snapshot') return { frame: { ...first, resources: c.items.flat() } };
    return {
      frame: { ...first, upserts: c.items.flat() as Upsert[], deletes: c.deletes.flat() },
    };
  }
}

function sameFrame(a: Part, b: Part): boolean {
  if (a.type !== b.type || a.cluster !== b.cluster) return false;
  if (a.type === 'snapshot') return a.revision === (b as Snapshot).revision;
  const d = b as DiffFrame;
  return a.fromRevision === d.fromRevision && a.toRevision === d.toRevision;
}
