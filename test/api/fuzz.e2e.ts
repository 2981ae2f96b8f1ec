/**
 * Generated requests (fast-check) against a real controller, driven by the OpenAPI document
 * it serves (`/api/docs-json`): every operation, with path parameters, query parameters and
 * bodies built from the document's schemas. Two properties:
 *
 * - schema-valid requests are answered with a documented status, never a 5xx, and if they
 *   are refused it is for a documented reason: a 400 names the offending fields (a rule the
 *   schema cannot say, e.g. a gateway outside the CIDR), a 404 an unknown reference, a 409
 *   a conflict; never 401/403/413/415;
 * - mutated requests (wrong types, missing and extra fields, NUL bytes, unpaired
 *   surrogates, invalid UTF-8, huge strings, unicode, boundary integers, bodies that are
 *   not objects, deep nesting, wrong content types and tokens, methods a path does not
 *   have) are answered with a status the document lists for the operation (or 404/405 for
 *   what it does not have), never a 5xx, and those with a known answer get it (NUL in a
 *   path: 404; in a query or body value: 400 naming the field; ...).
 *
 * Every response is validated against the document (test/support/contract.ts: status
 * listed, content type and body schema). The seed is logged (set LATTICE_FUZZ_SEED to
 * replay a run, LATTICE_FUZZ_RUNS to change its size); the counts (requests, by status, by
 * kind, failures) go to bench/results/fuzz.json.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdirSync, writeFileSync } from 'node:fs';
import { REFUSED_VALUE } from '../../apps/controller/src/common/errors.js';
import { shownKey } from '../../apps/controller/src/common/text.js';
import { loadContract, type Contract } from '../support/contract.js';
import {
  ADMIN_TOKEN,
  VIEWER_TOKEN,
  startController,
  type TestController,
} from '../support/controller.js';

type Json = Record<string, any>;

const SEED = Number(process.env.LATTICE_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Requests per property: schema-valid ones, then mutated ones. */
const RUNS = Number(process.env.LATTICE_FUZZ_RUNS ?? 1000);
/** Record failures and go on (to see them all at once) rather than stop and shrink. */
const COLLECT = process.env.LATTICE_FUZZ_COLLECT === '1';
/** A small body limit, so that bodies over it (413) are cheap to send. */
const BODY_LIMIT = 64 * 1024;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

let t: TestController;
let contract: Contract;
let doc: Json;

// ---------------------------------------------------------------------------------------
// What was sent and what came back, for bench/results/fuzz.json.

const stats = {
  seed: SEED,
  runsPerProperty: RUNS,
  requests: 0,
  byStatus: {} as Record<string, number>,
  byKind: {} as Record<string, number>,
  byOperation: {} as Record<string, Record<string, number>>,
  failures: 0,
  /** Failures by operation, kind of request and what was wrong (the first line of it). */
  failuresByKind: {} as Record<string, number>,
  /** One example of each of the first 20 kinds of failure. */
  failureExamples: [] as string[],
  durationMs: 0,
};
const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

// ---------------------------------------------------------------------------------------
// The document's operations.

interface Operation {
  readonly method: string;
  readonly template: string;
  readonly id: string;
  readonly pathParams: Json[];
  readonly queryParams: Json[];
  readonly body?: Json;
  readonly responses: string[];
  readonly mutating: boolean;
  readonly isPublic: boolean;
  /** The operation takes a join token (POST /join), not an API token. */
  readonly joinToken: boolean;
}

function operations(): Operation[] {
  return Object.entries<Json>(doc.paths).flatMap(([template, item]) =>
    METHODS.filter((m) => item[m]).map((m) => {
      const op = item[m] as Json;
      const params = (op.parameters ?? []) as Json[];
      return {
        method: m.toUpperCase(),
        template,
        id: `${m.toUpperCase()} ${template}`,
        pathParams: params.filter((p) => p.in === 'path'),
        queryParams: params.filter((p) => p.in === 'query'),
        body: op.requestBody?.content?.['application/json']?.schema as Json | undefined,
        responses: Object.keys(op.responses ?? {}),
        mutating: m !== 'get',
        isPublic: Array.isArray(op.security) && op.security.length === 0,
        joinToken: Array.isArray(op.security) && op.security.some((x: Json) => 'joinToken' in x),
      };
    }),
  );
}

const resolve = (s: Json): Json =>
  s.$ref ? resolve(doc.components.schemas[String(s.$ref).split('/').pop()!] as Json) : s;

// ---------------------------------------------------------------------------------------
// References. The document says only "an id or a name"; these make lookups find something:
// the objects created before the run (never deleted: DELETEs name only objects the run
// created), those the run created, by id and by name, and some that do not exist.

const KINDS = [
  'hosts',
  'networks',
  'instances',
  'routers',
  'policies',
  'join-tokens',
  'floating-ip-pools',
  'floating-ips',
] as const;
type Kind = (typeof KINDS)[number];
const byKind = () =>
  Object.fromEntries(KINDS.map((k) => [k, [] as string[]])) as Record<Kind, string[]>;
const seeded = byKind();
const created = byKind();
const cursors: string[] = [];
let joinToken = '';

/** One of the references in `list()` as it is when the value is generated. */
const pick = (list: () => string[]) =>
  fc.nat({ max: 1_000_000 }).map((i) => {
    const l = list();
    return l.length > 0 ? l[i % l.length] : 'no-such-thing';
  });

const refArb = (kind: Kind, deleting: boolean) =>
  fc.oneof(
    {
      arbitrary: pick(() => (deleting ? created[kind] : [...seeded[kind], ...created[kind]])),
      weight: 6,
    },
    {
      arbitrary: fc.constantFrom('no-such-thing', '00000000-0000-4000-8000-000000000000'),
      weight: 1,
    },
    { arbitrary: fc.uuid(), weight: 1 },
  );

/**
 * Which objects a property, parameter or path names, by its name in the document; `where`
 * is the operation (`DELETE /api/v1/hosts/{idOrName}`).
 */
function refKind(name: string, where = ''): Kind | undefined {
  if (['network', 'networks', 'attach', 'detach'].includes(name)) return 'networks';
  if (name === 'host') return 'hosts';
  if (name === 'instance') return 'instances';
  if (name === 'pool') return 'floating-ip-pools';
  if (name === 'idOrName' || name === 'idOrAddress')
    return /\/api\/v1\/([\w-]+)/.exec(where)?.[1] as Kind;
  return undefined;
}

/** What a 201 created and a DELETE deleted, for later references. */
function track(p: Parts, res: Answer): void {
  const kind = /^\/api\/v1\/([\w-]+)/.exec(p.op.template)?.[1] as Kind;
  if (!KINDS.includes(kind)) return;
  if (res.status === 201 && p.op.method === 'POST') {
    const items = (Array.isArray(res.body?.items) ? res.body.items : [res.body]) as Json[];
    // (a floating IP is named by its address)
    for (const o of items) created[kind].push((o.name ?? o.address) as string, o.id as string);
  }
  if (res.status === 200 && p.op.method === 'DELETE') {
    created[kind] = created[kind].filter((r) => r !== res.body?.id && r !== res.body?.name);
  }
}

// ---------------------------------------------------------------------------------------
// Schema-valid values.

/** A canonical CIDR (no host bits set) of /8 to /30, mostly in 10/8 and 172.16/12. */
const cidrArb = fc
  .tuple(
    fc.constantFrom(10, 172, 100, 198),
    fc.nat(255),
    fc.nat(255),
    fc.integer({ min: 8, max: 30 }),
  )
  .map(([a, b, c, len]) => {
    const ip = ((a << 24) | (b << 16) | (c << 8)) >>> 0;
    const masked = (ip & (len === 0 ? 0 : (~0 << (32 - len)) >>> 0)) >>> 0;
    return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${len}`;
  });

function stringArb(s: Json, name: string, where: string): fc.Arbitrary<string> {
  let base: fc.Arbitrary<string>;
  if (name === 'cidr') base = cidrArb;
  else if (s.format === 'uuid') base = fc.uuid();
  else if (s.pattern) base = fc.stringMatching(new RegExp(s.pattern as string));
  else
    base = fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 24, 24) });
  const fits = (v: string) =>
    v.length >= (s.minLength ?? 0) &&
    v.length <= (s.maxLength ?? Infinity) &&
    (!s.not?.pattern || !new RegExp(s.not.pattern as string).test(v));
  base = base.filter(fits);
  if (typeof s.example === 'string' && fits(s.example)) {
    base = fc.oneof({ arbitrary: base, weight: 4 }, fc.constant(s.example));
  }
  const kind = refKind(name, where);
  if (!kind) return base;
  const deleting = name === 'idOrName' && where.startsWith('DELETE ');
  return fc.oneof({ arbitrary: refArb(kind, deleting), weight: 3 }, base);
}

function intArb(s: Json): fc.Arbitrary<number> {
  const min = Number(s.minimum ?? -(2 ** 31));
  const max = Number(s.maximum ?? 2 ** 31 - 1);
  return fc.oneof(
    { arbitrary: fc.bigInt(BigInt(min), BigInt(max)).map(Number), weight: 4 },
    fc.constantFrom(min, max),
  );
}

/**
 * A value of `schema` (names of properties guide references and CIDRs). Optional
 * properties are left out more often than not: each model of a network takes only some.
 */
function valueArb(schema: Json, name = '', where = ''): fc.Arbitrary<unknown> {
  const s = resolve(schema);
  let a: fc.Arbitrary<unknown>;
  if (s.allOf?.length === 1) return valueArb(s.allOf[0] as Json, name, where);
  if (s.oneOf) a = fc.oneof(...(s.oneOf as Json[]).map((x) => valueArb(x, name, where)));
  else if (s.enum) a = fc.constantFrom(...(s.enum as unknown[]));
  else if (s.type === 'string') a = stringArb(s, name, where);
  else if (s.type === 'integer') a = intArb(s);
  else if (s.type === 'number') a = fc.double({ noNaN: true, noDefaultInfinity: true });
  else if (s.type === 'boolean') a = fc.boolean();
  else if (s.type === 'array') {
    a = fc.array(valueArb(s.items as Json, name, where), {
      minLength: s.minItems ?? 0,
      maxLength: Math.min(s.maxItems ?? 4, 4),
    });
  } else if (s.type === 'object' || s.properties) {
    const props = Object.entries<Json>(s.properties ?? {});
    if (props.length > 0) {
      const required = (s.required ?? []) as string[];
      a = fc
        .tuple(
          ...props.map(([k, p]) => {
            const v = valueArb(p, k, where).map((x) => [k, x] as const);
            return required.includes(k)
              ? v
              : fc.oneof({ arbitrary: fc.constant(undefined), weight: 2 }, v);
          }),
        )
        .map((kv) => Object.fromEntries(kv.filter((x) => x !== undefined)));
    } else if (s.additionalProperties && typeof s.additionalProperties === 'object') {
      const keys = fc.oneof(
        fc.stringMatching(/^([a-z0-9]{1,8}\.io\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?$/),
        fc.string({ minLength: 1, maxLength: 12 }),
      );
      a = fc.dictionary(keys, valueArb(s.additionalProperties as Json, name, where), {
        maxKeys: Math.min(s.maxProperties ?? 3, 3),
      });
    } else a = fc.constant({});
  } else a = fc.constant(null);
  if (s.nullable) a = fc.oneof({ arbitrary: a, weight: 4 }, fc.constant(null));
  return a;
}

// ---------------------------------------------------------------------------------------
// Requests, as parts (decoded values) and as sent.

interface Parts {
  op: Operation;
  method: string;
  /** Path parameter values; `raw` ones are inserted as they are (already encoded). */
  path: Record<string, { value: string; raw?: boolean }>;
  query: [string, string][];
  /** A JSON value to send, or raw bytes with their content type. */
  body?: { json: unknown } | { raw: string | Uint8Array };
  contentType?: string | null;
  token: string | null;
  /** What was mutated, and what the answer must then be. */
  mutation?: string;
  expect?: (res: Answer) => string | undefined;
}

interface Answer {
  status: number;
  type: string;
  text: string;
  body: any;
  allow: string | null;
}

/** Percent-encodes as UTF-8, and an unpaired surrogate as WTF-8 (bytes no UTF-8 decoder takes). */
function pct(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80 && /[A-Za-z0-9\-_.~]/.test(ch)) {
      out += ch;
      continue;
    }
    const bytes =
      cp < 0x80
        ? [cp]
        : cp < 0x800
          ? [0xc0 | (cp >> 6), 0x80 | (cp & 63)]
          : cp < 0x10000
            ? [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)]
            : [
                0xf0 | (cp >> 18),
                0x80 | ((cp >> 12) & 63),
                0x80 | ((cp >> 6) & 63),
                0x80 | (cp & 63),
              ];
    out += bytes.map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}

function pathOf(p: Parts): string {
  let path = p.op.template.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const v = p.path[name];
    return v.raw ? v.value : pct(v.value);
  });
  if (p.query.length > 0) path += '?' + p.query.map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&');
  return path;
}

function describeParts(p: Parts): string {
  const body =
    p.body === undefined
      ? ''
      : 'json' in p.body
        ? JSON.stringify(p.body.json)
        : typeof p.body.raw === 'string'
          ? p.body.raw
          : `<${p.body.raw.length} bytes>`;
  return `${p.method} ${pathOf(p)} [${p.mutation ?? 'valid'}] ${p.contentType ?? ''} ${body.slice(0, 300)}`;
}

async function send(p: Parts): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (p.token) headers.authorization = `Bearer ${p.token}`;
  let body: string | Uint8Array | undefined;
  if (p.body !== undefined) {
    body = 'json' in p.body ? JSON.stringify(p.body.json) : p.body.raw;
    if (p.contentType !== null) headers['content-type'] = p.contentType ?? 'application/json';
  }
  const res = await fetch(t.url + pathOf(p), { method: p.method, headers, body });
  const text = await res.text();
  const type = (res.headers.get('content-type') ?? '').split(';')[0].trim();
  let parsed: unknown;
  try {
    parsed = type === 'application/json' ? JSON.parse(text) : text;
  } catch {
    parsed = text;
  }
  return { status: res.status, type, text, body: parsed, allow: res.headers.get('allow') };
}

/** Sends, counts, and says what is wrong with the answer (undefined: nothing). */
async function exchange(p: Parts, valid: boolean): Promise<string | undefined> {
  const res = await send(p);
  const sentPath = new URL(pathOf(p), t.url);
  stats.requests++;
  bump(stats.byStatus, String(res.status));
  bump(stats.byKind, p.mutation ?? 'valid');
  bump((stats.byOperation[p.op.id] ??= {}), String(res.status));
  track(p, res);
  const problem = verdict(p, res, sentPath.pathname + sentPath.search, valid);
  if (problem) {
    stats.failures++;
    const kind = `${p.op.id} [${p.mutation ?? 'valid'}] ${res.status}: ${problem.split('\n')[0].slice(0, 120)}`;
    const line = `${problem}\n  request: ${describeParts(p)}\n  answer: ${res.status} ${res.text.slice(0, 500)}`;
    if (!stats.failuresByKind[kind] && stats.failureExamples.length < 20) {
      stats.failureExamples.push(line);
    }
    bump(stats.failuresByKind, kind);
    return line;
  }
  return undefined;
}

function verdict(p: Parts, res: Answer, sentPath: string, valid: boolean): string | undefined {
  if (res.status >= 500) return `a ${res.status}`;
  try {
    contract.check(p.method, sentPath, res);
  } catch (e) {
    return (e as Error).message;
  }
  if (res.status === 405 && !res.allow) return '405 without Allow';
  if (res.status === 400 && res.body?.message === REFUSED_VALUE) {
    return 'PostgreSQL refused a value the validators let through';
  }
  if (valid) {
    if ([401, 403, 405, 413, 415].includes(res.status))
      return `a schema-valid request got ${res.status}`;
    if (res.status === 400 && !(Array.isArray(res.body?.details) && res.body.details.length > 0)) {
      return 'a schema-valid request got a 400 that names no field';
    }
  }
  return p.expect?.(res);
}

// ---------------------------------------------------------------------------------------
// Schema-valid requests of an operation.

function validParts(op: Operation): fc.Arbitrary<Parts> {
  const path = fc.record(
    Object.fromEntries(
      op.pathParams.map((prm) => [
        prm.name as string,
        (valueArb(prm.schema as Json, prm.name as string, op.id) as fc.Arbitrary<string>)
          // A dot segment is resolved away by the client: another path.
          .filter((v) => v !== '.' && v !== '..')
          .map((value) => ({ value })),
      ]),
    ),
  ) as fc.Arbitrary<Parts['path']>;
  const query = fc
    .tuple(
      ...op.queryParams.map((prm) => {
        const name = prm.name as string;
        const v: fc.Arbitrary<unknown> =
          name === 'cursor'
            ? fc.oneof(fc.constantFrom(...cursors), fc.string({ maxLength: 30 }))
            : name === 'timeoutMs'
              ? fc.integer({ min: 1, max: 200 }) // keep a wait short
              : valueArb(prm.schema as Json, name, op.id);
        return fc.option(
          v.map((x) => [name, String(x)] as [string, string]),
          { nil: undefined, freq: 2 },
        );
      }),
    )
    .map((qs) => {
      const q = qs.filter((x): x is [string, string] => x !== undefined);
      // As documented: `wait` is required when `timeoutMs` is given.
      if (q.some(([k]) => k === 'timeoutMs') && !q.some(([k]) => k === 'wait'))
        q.push(['wait', 'applied']);
      return q;
    });
  const body = op.body
    ? valueArb(op.body, '', op.id).map((json) => ({ json }))
    : fc.constant(undefined);
  return fc.record({ path, query, body }).map(({ path, query, body }): Parts => ({
    op,
    method: op.method,
    path,
    query,
    body,
    token: op.isPublic ? null : op.joinToken ? joinToken : ADMIN_TOKEN,
  }));
}

// ---------------------------------------------------------------------------------------
// Mutations of a valid request.

const HUGE = 'x'.repeat(10_000);
const OVER_LIMIT = 'y'.repeat(BODY_LIMIT + 1);
/** Strings outside the rules: text PostgreSQL refuses, unicode, huge, tricky. */
const nastyString = fc.oneof(
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udc00',
    '',
    ' ',
    'é',
    'ñame',
    '🙂',
    '\u202e\u200b',
    'İ',
    'a'.repeat(64),
    HUGE,
    '🙂'.repeat(3_000),
    '../../etc',
    "'; DROP TABLE hosts; --",
    '%00',
    '\\',
    '{}',
    '00000000-0000-0000-0000-000000000000',
    'ABCDEF01-2345-6789-ABCD-EF0123456789',
  ),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);
/** Those that fit in a query or path (Node refuses request heads over 16 KiB: a 431). */
const shortNasty = nastyString.filter((s) => pct(s).length < 3000);
const boundaryNumber = fc.constantFrom(
  0,
  -1,
  1,
  1.5,
  -0.5,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  1e308,
  4095,
  16777216,
  575,
  9001,
  7,
  31,
  1001,
);
const deep = (n: number, leaf: unknown = 1): unknown => {
  let v: unknown = leaf;
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { a: v };
  return v;
};
const wrongValue = fc.oneof(
  nastyString,
  boundaryNumber,
  fc.constantFrom(null, true, false, [], {}, [1, 'a'], { a: 1 }, ['\u0000'], deep(40)),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Paths to the values of a JSON value (`[]` is the value itself), for mutating one. */
function valuePaths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...valuePaths(x, [...at, i])));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) out.push(...valuePaths(x, [...at, k]));
  }
  return out;
}
/** The field the API names for a value (`a.b`, `a[0]`; a key holding a NUL escaped). */
const fieldName = (at: (string | number)[]) =>
  at.reduce<string>((s, k) => {
    if (typeof k === 'number') return `${s}[${k}]`;
    const key = shownKey(k);
    return s ? `${s}.${key}` : key;
  }, '');
function setAt(v: unknown, at: (string | number)[], value: unknown, remove = false): unknown {
  if (at.length === 0) return value;
  const copy: any = Array.isArray(v) ? [...v] : { ...(v as object) };
  const [k, ...rest] = at;
  if (rest.length === 0 && remove) {
    if (Array.isArray(copy)) copy.splice(k as number, 1);
    else delete copy[k];
  } else copy[k] = setAt(copy[k], rest, value, remove);
  return copy;
}
const getAt = (v: unknown, at: (string | number)[]): unknown =>
  at.reduce<any>((x, k) => (x == null ? undefined : x[k]), v);

const fieldError = (field: string) => (res: Answer) =>
  res.status === 400 && (res.body?.details ?? []).some((d: { field: string }) => d.field === field)
    ? undefined
    : `expected a 400 naming ${field}`;
const status =
  (...statuses: number[]) =>
  (res: Answer) =>
    statuses.includes(res.status) ? undefined : `expected ${statuses.join(' or ')}`;

type Mutation = (p: Parts) => fc.Arbitrary<Parts> | undefined;

const mutations: Record<string, Mutation> = {
  // Path parameters.
  'path-nul': (p) =>
    pathMutation(p, (v) =>
      fc.nat(v.length).map((i) => ({ value: `${v.slice(0, i)}\u0000${v.slice(i)}` })),
    ),
  'path-invalid-utf8': (p) =>
    pathMutation(p, () =>
      fc
        .constantFrom('%FF', 'a%C0%80', '%ED%A0%80', '%E2%82', 'h%FFh')
        .map((value) => ({ value, raw: true })),
    ),
  'path-nasty': (p) =>
    pathMutation(p, () =>
      nastyString
        // Within the request line Node accepts (16 KiB of headers), and no dot segment
        // (which the client resolves away: another path).
        .filter((s) => s.length > 0 && pct(s).length < 12_000 && s !== '.' && s !== '..')
        .map((value) => ({ value })),
    ),
  'path-long': (p) =>
    pathMutation(p, () =>
      fc.integer({ min: 64, max: 3000 }).map((n) => ({ value: 'a'.repeat(n) })),
    ),
  // Query parameters.
  'query-nul': (p) =>
    p.op.queryParams.length === 0
      ? undefined
      : fc.constantFrom(...p.op.queryParams.map((q) => q.name as string)).map((name) => ({
          ...p,
          query: [...p.query.filter(([k]) => k !== name), [name, `a\u0000${name}`]] as [
            string,
            string,
          ][],
          expect: fieldError(name),
        })),
  'query-wrong': (p) =>
    p.op.queryParams.length === 0
      ? undefined
      : fc
          .tuple(
            fc.constantFrom(...p.op.queryParams.map((q) => q.name as string)),
            fc.oneof(
              shortNasty,
              fc.constantFrom(
                'abc',
                '-1',
                '0',
                '1001',
                '1.5',
                '1e3',
                '',
                '+5',
                ' 7',
                '0x10',
                '600001',
                'true',
              ),
            ),
            fc.boolean(),
          )
          .map(([name, v, twice]) => ({
            ...p,
            query: [
              ...p.query.filter(([k]) => k !== name),
              [name, v],
              ...(twice ? [[name, v]] : []),
            ] as [string, string][],
          })),
  'query-cursor': (p) =>
    p.op.queryParams.some((q) => q.name === 'cursor')
      ? fc
          .oneof(
            fc
              .jsonValue({ maxDepth: 2 })
              .map((j) => Buffer.from(JSON.stringify(j) ?? '').toString('base64url')),
            shortNasty.map((s) => Buffer.from(JSON.stringify({ after: s })).toString('base64url')),
            fc.constantFrom('%', '===', 'eyJhZnRlciI6ImEifQ'.repeat(50)),
          )
          .map((c) => ({
            ...p,
            query: [...p.query.filter(([k]) => k !== 'cursor'), ['cursor', c]] as [
              string,
              string,
            ][],
          }))
      : undefined,
  'query-unknown': (p) =>
    fc
      .tuple(
        nastyString.filter((s) => s.length > 0 && s.length < 100),
        nastyString.filter((s) => s.length < 100),
      )
      .map(([k, v]) => ({
        ...p,
        query: [...p.query, [k, v]] as [string, string][],
      })),
  // Bodies.
  'body-field-wrong': (p) =>
    bodyMutation(p, (json, paths) =>
      fc
        .tuple(fc.constantFrom(...paths), wrongValue)
        .map(([at, v]) => ({ json: setAt(json, at, v) })),
    ),
  'body-field-nul': (p) => {
    if (!p.body || !('json' in p.body)) return undefined;
    const json = p.body.json;
    const strings = valuePaths(json).filter(
      (at) => typeof getAt(json, at) === 'string' && at.length > 0,
    );
    if (strings.length === 0) return undefined;
    return fc
      .tuple(fc.constantFrom(...strings), fc.constantFrom('\u0000', '\ud800', '\udfff'))
      .map(([at, bad]) => ({
        ...p,
        body: { json: setAt(json, at, `${String(getAt(json, at))}${bad}`) },
        mutation: 'body-field-nul',
        expect: fieldError(fieldName(at)),
      }));
  },
  'body-field-missing': (p) =>
    bodyMutation(p, (json, paths) =>
      fc.constantFrom(...paths).map((at) => ({ json: setAt(json, at, undefined, true) })),
    ),
  'body-field-extra': (p) =>
    bodyMutation(p, (json, paths) =>
      fc
        .tuple(
          fc.constantFrom(...paths.map((at) => at.slice(0, -1))),
          fc.oneof(
            fc.constantFrom(
              '__proto__',
              'constructor',
              'prototype',
              'id',
              'revision',
              'a\u0000',
              '\ud800',
              '',
            ),
            fc.string({ maxLength: 10 }),
          ),
          wrongValue,
        )
        .map(([at, key, v]) => {
          const target = getAt(json, at);
          if (!target || typeof target !== 'object' || Array.isArray(target)) return { json };
          // A computed key makes an own property, `__proto__` included.
          return { json: setAt(json, at, { ...target, [key]: v }) };
        }),
    ),
  'body-not-object': (p) =>
    p.op.body
      ? fc.constantFrom('[]', 'null', '"x"', '1', 'true', '[{"name":"a"}]').map((raw) => ({
          ...p,
          body: { raw },
          contentType: 'application/json',
          expect: (res: Answer) =>
            res.status === 400 &&
            res.body?.message === 'the body must be a JSON object' &&
            res.body.details === undefined
              ? undefined
              : 'expected one 400 "the body must be a JSON object"',
        }))
      : undefined,
  'body-deep': (p) =>
    p.op.body
      ? fc
          .tuple(
            fc.integer({ min: 17, max: 20_000 }),
            fc.constantFrom('labels', 'instances', 'networks', 'x'),
          )
          // As text: JSON.stringify itself gives up on such depths.
          .map(([n, key]) => ({
            ...p,
            body: { raw: `{"name":"deep","${key}":${'[{"a":'.repeat(n)}1${'}]'.repeat(n)}}` },
            contentType: 'application/json',
            expect: status(400, 413),
          }))
      : undefined,
  // Not JSON, not UTF-8 (a lone byte, an overlong NUL), or JSON after a byte-order mark.
  'body-malformed': (p) =>
    p.op.mutating
      ? fc
          .constantFrom<string | Uint8Array>(
            '{"name": ',
            '{name: x}',
            '{"a":1}}',
            '\u0000',
            Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
            Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]),
            Buffer.from([0xc0, 0x80]),
          )
          .map((raw) => ({ ...p, body: { raw }, contentType: 'application/json' }))
      : undefined,
  'body-over-limit': (p) =>
    p.op.mutating
      ? fc.constant({ ...p, body: { json: { name: OVER_LIMIT } }, expect: status(413) })
      : undefined,
  'content-type': (p) =>
    p.op.mutating
      ? fc
          .constantFrom(
            'text/plain',
            'application/xml',
            'application/x-www-form-urlencoded',
            'multipart/form-data; boundary=x',
            'application/json-patch+json',
            null,
          )
          .map((contentType) => ({
            ...p,
            body: { raw: p.body && 'json' in p.body ? JSON.stringify(p.body.json) : 'name=x' },
            contentType,
            expect: status(415),
          }))
      : undefined,
  'content-type-json-variants': (p) =>
    p.op.body
      ? fc
          .constantFrom(
            'application/json; charset=utf-8',
            'Application/JSON',
            'application/json;charset=UTF-8',
          )
          .map((contentType) => ({ ...p, contentType }))
      : undefined,
  // Tokens.
  'token-none': (p) =>
    p.op.isPublic ? undefined : fc.constant({ ...p, token: null, expect: status(401) }),
  'token-wrong': (p) =>
    p.op.isPublic
      ? undefined
      : fc
          .constantFrom('wrong-token-0123456789', 'x', ADMIN_TOKEN + 'x')
          .map((token) => ({ ...p, token, expect: status(401) })),
  'token-viewer': (p) =>
    p.op.mutating && !p.op.isPublic && !p.op.joinToken
      ? fc.constant({ ...p, token: VIEWER_TOKEN, expect: status(403) })
      : undefined,
  // Methods the path does not have.
  'method-wrong': (p) => {
    const has = METHODS.filter((m) => doc.paths[p.op.template][m]).map((m) => m.toUpperCase());
    // Not a method another operation has for this path (GET /instances/bulk is getInstance).
    const others = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'].filter(
      (m) => !has.includes(m) && !contract.operation(m, pathOf(p)),
    );
    return others.length === 0
      ? undefined
      : fc.constantFrom(...others).map((method) => ({
          ...p,
          method,
          body: method === 'GET' ? undefined : p.body,
          expect: (res: Answer) => {
            if (res.status !== 405) return 'expected 405';
            const allow = (res.allow ?? '').split(', ');
            return has.every((m) => allow.includes(m))
              ? undefined
              : `Allow lacks one of ${has.join(', ')}`;
          },
        }));
  },
};

/**
 * A path parameter no object can have: 404, or a 400 when the body or the wait parameters
 * are refused first (they are checked before the lookup).
 */
function pathMutation(
  p: Parts,
  value: (v: string) => fc.Arbitrary<{ value: string; raw?: boolean }>,
): fc.Arbitrary<Parts> | undefined {
  const names = Object.keys(p.path);
  if (names.length === 0) return undefined;
  const name = names[0];
  return value(p.path[name].value).map((v) => ({
    ...p,
    path: { ...p.path, [name]: v },
    expect: (res: Answer) =>
      res.status === 404 ||
      (res.status === 400 && p.op.body !== undefined) ||
      // A generated string may happen to be the name of an object the run created.
      (!v.raw && /^[a-z0-9][a-z0-9-]{0,62}$/.test(v.value))
        ? undefined
        : 'expected 404 (a path that names nothing)',
  }));
}

function bodyMutation(
  p: Parts,
  make: (json: unknown, paths: (string | number)[][]) => fc.Arbitrary<{ json: unknown }>,
): fc.Arbitrary<Parts> | undefined {
  if (!p.body || !('json' in p.body)) return undefined;
  const paths = valuePaths(p.body.json).filter((at) => at.length > 0);
  if (paths.length === 0) return undefined;
  return make(p.body.json, paths).map((body) => ({ ...p, body }));
}

function mutatedParts(op: Operation): fc.Arbitrary<Parts> {
  return validParts(op).chain((p) => {
    const applicable = Object.entries(mutations)
      .map(([name, m]) => [name, m(p)] as const)
      .filter((x): x is readonly [string, fc.Arbitrary<Parts>] => x[1] !== undefined);
    return fc.oneof(...applicable.map(([name, a]) => a.map((q) => ({ ...q, mutation: name }))));
  });
}

// ---------------------------------------------------------------------------------------

beforeAll(async () => {
  t = await startController({ env: { LATTICE_BODY_LIMIT: String(BODY_LIMIT) } });
  contract = await loadContract(t.url);
  // the join token generated joins use: enough uses for every run
  joinToken = (await t.post('/join-tokens', { name: 'fz-join', maxUses: 1_000_000 }).expect(201))
    .body.token as string;
  doc = contract.document;
  // Objects for the generated references to find (one network of every model and variant).
  const hosts = [await t.newHost(), await t.newHost(), await t.newHost()];
  const nets = [
    await t.newNetwork('bridge', '10.200.0.0/24'),
    await t.newNetwork('vlan', '10.201.0.0/24'),
    await t.newNetwork('routed', '10.202.0.0/22'),
    await t.newNetwork('overlay', '10.203.0.0/24'),
    await t.newNetwork('overlay', '10.204.0.0/22', { encapsulation: 'ipip' }),
    await t.newNetwork('fabric', '10.205.0.0/24'),
    await t.newNetwork('fabric', '10.206.0.0/24', { transport: 'vlan' }),
  ];
  const insts = [];
  for (const n of nets.slice(0, 4)) insts.push(await t.newInstance(n.name, hosts[0].name));
  const router = (await t.post('/routers', { name: 'fz-r1', networks: [nets[2].name] }).expect(201))
    .body;
  const pool = (
    await t.post('/floating-ip-pools', { name: 'fz-pool', cidr: '203.0.113.0/24' }).expect(201)
  ).body;
  const fip = (
    await t.post('/floating-ips', { pool: pool.name, instance: insts[0].name }).expect(201)
  ).body;
  for (const [kind, list] of [
    ['floating-ip-pools', [pool]],
    ['floating-ips', [{ name: fip.address, id: fip.id }]],
    ['hosts', hosts],
    ['networks', nets],
    ['instances', insts],
    ['routers', [router]],
    ['join-tokens', [(await t.post('/join-tokens', { name: 'fz-j1' }).expect(201)).body]],
    [
      'policies',
      [(await t.post('/policies', { name: 'fz-p1', selector: {}, ingress: [] }).expect(201)).body],
    ],
  ] as const) {
    for (const o of list) seeded[kind].push(o.name, o.id);
  }
  for (const kind of ['hosts', 'networks', 'instances'] as const) {
    const page = await t.get(`/${kind}?limit=1`).expect(200);
    cursors.push(page.body.nextCursor as string);
  }
}, 60_000);

afterAll(async () => {
  await t?.close();
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/fuzz.json', JSON.stringify(stats, null, 2) + '\n');
  console.log(
    `fuzz: seed ${SEED}, ${stats.requests} requests, by status ${JSON.stringify(stats.byStatus)}, ` +
      `${stats.failures} failure(s) (bench/results/fuzz.json)`,
  );
});

describe(`generated requests from the served document (seed ${SEED})`, () => {
  it('covers every operation of the document', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(20);
    for (const op of ops) if (op.pathParams.length > 0) expect(op.template).toMatch(/\{\w+\}/);
  });

  let started = 0;
  const run = async (valid: boolean) => {
    started ||= Date.now();
    const ops = operations();
    const arb = fc.constantFrom(...ops).chain((op) => (valid ? validParts(op) : mutatedParts(op)));
    await fc.assert(
      fc.asyncProperty(arb, async (p) => {
        const problem = await exchange(p, valid);
        if (problem && !COLLECT) throw new Error(problem);
      }),
      { seed: SEED + (valid ? 0 : 1), numRuns: RUNS },
    );
    stats.durationMs = Date.now() - started;
  };

  it(
    `accepts schema-valid requests, or refuses them only for a documented reason (${RUNS} runs)`,
    () => run(true),
    120_000,
  );

  it(
    `answers mutated requests with a documented 4xx, never a 5xx (${RUNS} runs)`,
    () => run(false),
    120_000,
  );

  it('found no failure', () => {
    expect(stats.failureExamples).toEqual([]);
  });

  it('sent requests to every operation', () => {
    expect(Object.keys(stats.byOperation).sort()).toEqual(
      operations()
        .map((o) => o.id)
        .sort(),
    );
  });
});
