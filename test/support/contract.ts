/**
 * Contract validation: every response the suites get through the helpers of controller.ts
 * is checked against the OpenAPI document the controller serves (`/api/docs-json`), so the
 * document cannot drift from the code:
 *
 * - the operation is found by method and path template (a request to a path or method the
 *   document does not have must be answered 404 or 405 with the error body);
 * - the status is one the document lists for that operation;
 * - the content type is the documented one, and the body matches the documented schema
 *   (Ajv, `$ref`s resolved; error bodies also repeat the HTTP status in `statusCode`).
 *
 * Objects are validated closed-world: a property the document does not describe is an
 * error (as if every object schema with `properties` said `additionalProperties: false`),
 * so a new field cannot ship undocumented. The document is fetched and its schemas are
 * compiled once per test file; the number of responses validated is written to
 * bench/results/contract-<test file>.json when the file's tests end.
 */
import { afterAll, expect } from '@jest/globals';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import request from 'supertest';

// ajv-formats is CommonJS: its default export arrives wrapped in ESM.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

type Json = Record<string, any>;

interface Operation {
  readonly method: string;
  readonly template: string;
  readonly match: RegExp;
  /** Literal segments count: `/instances/bulk` wins over `/instances/{idOrName}`. */
  readonly literals: number;
  readonly responses: Json;
}

export interface ContractResponse {
  status: number;
  type: string;
  text: string;
  body: unknown;
}

const SCHEMA_REF = '#/components/schemas/';
const ERROR_REF = `${SCHEMA_REF}ErrorResponse`;
const ID = (name: string) => `urn:lattice:openapi:${name}`;

/** The document with closed objects and `$ref`s rewritten to the ids Ajv knows them by. */
function prepare(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(prepare);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) {
    if (k === '$ref' && typeof v === 'string') {
      if (!v.startsWith(SCHEMA_REF)) throw new Error(`contract: unexpected $ref ${v}`);
      out.$ref = ID(v.slice(SCHEMA_REF.length));
    } else if (k === 'example' || k === 'examples') {
      out[k] = v; // values, not schemas
    } else {
      out[k] = prepare(v);
    }
  }
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

export class Contract {
  private readonly ajv: Ajv;
  private readonly operations: Operation[] = [];
  private readonly compiled = new Map<unknown, ValidateFunction>();
  /** Responses validated, by `METHOD template status`. */
  readonly counts = new Map<string, number>();
  validated = 0;

  constructor(readonly document: Json) {
    this.ajv = new Ajv({ allErrors: true, strict: true, validateFormats: true });
    this.ajv.addKeyword('example');
    addFormats(this.ajv);
    for (const [name, schema] of Object.entries<Json>(document.components?.schemas ?? {})) {
      this.ajv.addSchema(prepare(schema) as Json, ID(name));
    }
    for (const [template, item] of Object.entries<Json>(document.paths ?? {})) {
      for (const [method, op] of Object.entries<Json>(item)) {
        if (!['get', 'put', 'post', 'delete', 'patch', 'head', 'options'].includes(method))
          continue;
        const parts = template.split('/');
        const match = new RegExp(
          '^' +
            parts
              .map((p) =>
                /^\{[^}]+\}$/.test(p) ? '[^/]+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
              )
              .join('/') +
            '$',
        );
        this.operations.push({
          method: method.toUpperCase(),
          template,
          match,
          literals: parts.filter((p) => !p.startsWith('{')).length,
          responses: op.responses ?? {},
        });
      }
    }
  }

  /** The documented operation for a request, or undefined when the document has none. */
  operation(method: string, path: string): Operation | undefined {
    const bare = path.split('?')[0];
    return this.operations
      .filter((o) => o.method === method && o.match.test(bare))
      .sort((a, b) => b.literals - a.literals)[0];
  }

  private validator(schema: Json): ValidateFunction {
    let v = this.compiled.get(schema);
    if (!v) {
      v = this.ajv.compile(prepare(schema) as Json);
      this.compiled.set(schema, v);
    }
    return v;
  }

  /** Throws an error saying what differs from the document; counts the response otherwise. */
  check(method: string, path: string, res: ContractResponse): void {
    const where = `${method} ${path} answered ${res.status}`;
    const op = this.operation(method, path);
    let response: Json | undefined;
    let key: string;
    if (!op) {
      // Routes the document does not have: the API's 404 (or 405), with the error body.
      if (res.status !== 404 && res.status !== 405)
        throw new Error(`contract: ${where}, but the document has no such operation`);
      response = { content: { 'application/json': { schema: { $ref: ERROR_REF } } } };
      key = `${method} (not in the document) ${res.status}`;
    } else {
      response = op.responses[String(res.status)] ?? op.responses[`${String(res.status)[0]}XX`];
      if (!response) {
        throw new Error(
          `contract: ${where}, which the document does not list for ${method} ${op.template} ` +
            `(documented: ${Object.keys(op.responses).join(', ')}); body: ${res.text.slice(0, 500)}`,
        );
      }
      key = `${method} ${op.template} ${res.status}`;
    }
    const content = response.content as Json | undefined;
    if (content) {
      const mediaType = Object.keys(content).find((m) => m === res.type);
      if (!mediaType) {
        throw new Error(
          `contract: ${where} with content type "${res.type}", documented: ${Object.keys(content).join(', ')}`,
        );
      }
      const schema = content[mediaType].schema as Json | undefined;
      if (schema) {
        const body = mediaType === 'application/json' ? JSON.parse(res.text) : res.text;
        const validate = this.validator(schema);
        if (!validate(body)) {
          throw new Error(
            `contract: ${where}; the body does not match the documented schema: ` +
              this.ajv.errorsText(validate.errors?.slice(0, 10), {
                dataVar: 'body',
                separator: '; ',
              }) +
              `\nbody: ${res.text.slice(0, 1000)}`,
          );
        }
        if (schema.$ref === ERROR_REF && (body as Json).statusCode !== res.status) {
          throw new Error(
            `contract: ${where}, but the error body says ${(body as Json).statusCode}`,
          );
        }
      }
    } else if (res.text !== '') {
      throw new Error(`contract: ${where} with a body, documented without one`);
    }
    this.validated++;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
}

let contract: Promise<Contract> | undefined;
let loaded: Contract | undefined;

/** Fetches the served document once per test file and compiles it. */
export async function loadContract(url: string, ca?: string | Buffer): Promise<Contract> {
  contract ??= (async () => {
    const t = request(url).get('/api/docs-json');
    if (ca !== undefined) t.ca(ca);
    const res = await t;
    if (res.status !== 200) throw new Error(`contract: /api/docs-json answered ${res.status}`);
    loaded = new Contract(JSON.parse(res.text) as Json);
    return loaded;
  })();
  return contract;
}

/** For supertest's `.expect(fn)`: validates a response of the helpers. */
export function contractCheck(method: string, path: string) {
  return (res: ContractResponse): void => {
    if (!loaded) throw new Error('contract: the document is not loaded (startController loads it)');
    loaded.check(method, path, res);
  };
}

afterAll(() => {
  if (!loaded || loaded.validated === 0) return;
  const file = basename(expect.getState().testPath ?? 'unknown').replace(/\.[cm]?ts$/, '');
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    `bench/results/contract-${file}.json`,
    JSON.stringify(
      {
        file: expect.getState().testPath?.replace(`${process.cwd()}/`, ''),
        validated: loaded.validated,
        byOperationAndStatus: Object.fromEntries([...loaded.counts].sort()),
      },
      null,
      2,
    ) + '\n',
  );
});
