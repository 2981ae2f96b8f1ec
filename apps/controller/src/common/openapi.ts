/**
 * The OpenAPI side of the API conventions (DESIGN.md, "API conventions"), in one place so
 * that controllers stay thin: the shared error body, the `?wait=applied` parameters, pages,
 * path references, and the error statuses each kind of operation can answer.
 *
 * The document is the contract outside clients generate code from and that the test suites
 * validate every response against (test/support/contract.ts): what is written here must be
 * what the server does.
 */
import { applyDecorators, type Type } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiOperation,
  ApiParam,
  ApiProperty,
  ApiPropertyOptional,
  ApiQuery,
  ApiResponse,
  getSchemaPath,
} from '@nestjs/swagger';
import { MAX_PAGE } from './pagination.js';
import { IsObject, IsOptional } from 'class-validator';
import {
  IsLabels,
  LABEL_RULE,
  LABEL_VALUE_PATTERN,
  MAX_LABELS,
  NAME_PATTERN,
} from './validators.js';

// ---------------------------------------------------------------------------------------
// Patterns of the request fields, as the validators of validators.ts check them. Rules a
// pattern cannot say (reserved ranges, host bits, multicast MACs) are in the descriptions.

/** The source of a regular expression, for an OpenAPI `pattern`. */
const src = (r: RegExp) => r.source;

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** A dotted quad without leading zeros (`isIpv4`). */
export const IPV4_PATTERN = `^(${OCTET}\\.){3}${OCTET}$`;
/** An IPv4 CIDR of /8 to /30 (`IsIpv4Cidr` + the accepted prefix lengths). */
export const CIDR_PATTERN = `^(${OCTET}\\.){3}${OCTET}/([89]|[12][0-9]|30)$`;
/** A MAC address as `normalizeMac` accepts it: any case, `:` or `-`, surrounding blanks. */
export const MAC_PATTERN = '^\\s*[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}\\s*$';
/** Ids are UUIDs; a name never has this form (`IsObjectName`). */
export const UUID_PATTERN =
  '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
export const NAME_SCHEMA = {
  type: 'string',
  minLength: 1,
  maxLength: 63,
  pattern: src(NAME_PATTERN),
  not: { pattern: UUID_PATTERN },
} as const;

/** A reference to a related object in a request body: its id or its name. */
export const REF_SCHEMA = { type: 'string', maxLength: 63 } as const;

/** Labels as `IsLabels` checks them (keys are described: OpenAPI 3.0 cannot pattern keys). */
export const LABELS_SCHEMA = {
  type: 'object',
  maxProperties: MAX_LABELS,
  additionalProperties: {
    type: 'string',
    maxLength: 63,
    pattern: src(LABEL_VALUE_PATTERN),
  },
  description: `labels like Kubernetes': ${LABEL_RULE}`,
  example: { 'lattice.io/route-reflector': 'true' },
} as const;

/**
 * An optional `labels` property of a request body (hosts, instances): the one rule
 * (`IsLabels`) and its schema; `description` says what giving it means.
 */
export const OptionalLabels = (description?: string) =>
  applyDecorators(
    ApiPropertyOptional({
      ...LABELS_SCHEMA,
      description: description
        ? `${description}; ${LABELS_SCHEMA.description}`
        : LABELS_SCHEMA.description,
    }),
    IsOptional(),
    IsObject(),
    IsLabels(),
  );

// ---------------------------------------------------------------------------------------
// The error body (common/errors.ts).

export class FieldError {
  @ApiProperty({
    description: 'the offending field, nested as `a.b` and `a[0].b`',
    example: 'name',
  })
  field!: string;

  @ApiProperty({
    type: [String],
    description: 'what is wrong with it: one message, the most telling of the rules it breaks',
  })
  errors!: string[];
}

/** The one error body: `{ statusCode, error, message, details? }`. */
export class ErrorResponse {
  @ApiProperty({ type: 'integer', description: 'the HTTP status, repeated', example: 404 })
  statusCode!: number;

  @ApiProperty({ description: 'the HTTP reason phrase', example: 'Not Found' })
  error!: string;

  @ApiProperty({ description: 'what went wrong, for a person', example: 'host "h9" not found' })
  message!: string;

  @ApiPropertyOptional({
    description:
      '400: the offending fields, `[{ field, errors }]`; other statuses: an object with context ' +
      "(409 from a uniqueness rule: `{ object, field, value }`, what conflicts in the API's own " +
      'words; 503 on /health: `{ status, database }`; 504: `{ revision, lagging, result }`)',
    oneOf: [
      { type: 'array', items: { $ref: getSchemaPath(FieldError) } },
      { type: 'object', additionalProperties: true },
    ],
  })
  details?: FieldError[] | Record<string, unknown>;
}

/** Default descriptions of the error statuses. */
const ERROR_TEXT = {
  400:
    'Invalid input: `details` names every offending field (`[{ field, errors }]`), text a ' +
    'database cannot store (NUL, unpaired surrogates) included; a body that is not a JSON ' +
    'object, or not valid JSON or UTF-8, is one message without `details`.',
  401: 'No bearer token, or not a token of this controller.',
  403: 'The viewer token may only read: mutating calls need the admin token.',
  404: 'Not found.',
  409: 'Conflict.',
  413: 'The body is larger than the configured limit (`LATTICE_BODY_LIMIT`).',
  415: 'The body is of a content type the API does not read: send `application/json`.',
  503: 'The database is unreachable, or no connection became free in time: retry.',
  504:
    '`?wait=applied` timed out: the change is committed, but not every affected agent ' +
    'applied it in time. `details` carries `revision`, the `lagging` hosts and the ' +
    '`result` the call would have answered.',
} as const;
export type ErrorStatus = keyof typeof ERROR_TEXT;

/**
 * Error responses with the shared error schema. Each item is a status (with the default
 * description) or `[status, description]`.
 */
export function ApiErrors(...items: (ErrorStatus | [ErrorStatus, string])[]) {
  return applyDecorators(
    ApiExtraModels(ErrorResponse, FieldError),
    ...items.map((item) => {
      const [status, description] = Array.isArray(item) ? item : [item, ERROR_TEXT[item]];
      return ApiResponse({ status, description, type: ErrorResponse });
    }),
  );
}

// ---------------------------------------------------------------------------------------
// Operations.

/** Summary, description and operation id of an operation. */
export function ApiOp(operationId: string, summary: string, description: string) {
  return ApiOperation({ operationId, summary, description });
}

/** An operation that needs no token (`security: []`). */
export function ApiPublicOp(operationId: string, summary: string, description: string) {
  return ApiOperation({ operationId, summary, description, security: [] });
}

/** The path parameter `idOrName` of an operation on one `what` (host, network, ...). */
export function ApiIdOrName(what: string) {
  return ApiParam({
    name: 'idOrName',
    description:
      `the ${what}'s id (a UUID) or name: a value of the form of a UUID is always looked up as an id; ` +
      'one no id or name can be (a NUL, invalid UTF-8, over 100 characters) names nothing: 404',
    schema: { type: 'string', minLength: 1 },
  });
}

/** As agents/wait-applied.interceptor.ts has them (test/api/openapi.e2e.ts holds them equal). */
export const WAIT_DEFAULT_TIMEOUT_MS = 30_000;
export const WAIT_MAX_TIMEOUT_MS = 600_000;

/**
 * `?wait=applied&timeoutMs=N` (agents/wait-applied.interceptor.ts): hold the response
 * until every connected agent of an affected host has applied the change's revision.
 */
export function ApiWait() {
  return applyDecorators(
    ApiQuery({
      name: 'wait',
      required: false,
      description:
        'With `applied`, the response is held until every connected agent of a host the change ' +
        'affects has applied its revision (like `ovn-nbctl --wait=hv`); the body then carries ' +
        '`appliedInMs`. Any other value is a 400. Required when `timeoutMs` is given.',
      schema: { type: 'string', enum: ['applied'] },
    }),
    ApiQuery({
      name: 'timeoutMs',
      required: false,
      description:
        'How long `wait=applied` waits before answering 504 (the change stays committed). ' +
        'An integer of milliseconds; anything else is a 400.',
      schema: {
        type: 'integer',
        minimum: 1,
        maximum: WAIT_MAX_TIMEOUT_MS,
        default: WAIT_DEFAULT_TIMEOUT_MS,
      },
    }),
  );
}

/** `?limit=&cursor=` of a list (common/pagination.ts). */
export function ApiPageQuery() {
  return applyDecorators(
    ApiQuery({
      name: 'limit',
      required: false,
      description: 'page size',
      schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 100 },
    }),
    ApiQuery({
      name: 'cursor',
      required: false,
      description:
        "the previous page's `nextCursor`, as given (opaque); a value this API did not issue is a 400",
      schema: { type: 'string' },
    }),
  );
}

const pages = new Map<Type<unknown>, Type<unknown>>();

/** The class of a page of `Model`, named `<Model>Page` in the document. */
export function PageOf(Model: Type<unknown>): Type<unknown> {
  let page = pages.get(Model);
  if (!page) {
    class Page {
      @ApiProperty({ type: [Model], description: 'in name order' })
      items!: unknown[];

      @ApiProperty({
        type: String,
        nullable: true,
        description: 'pass as `?cursor=` for the next page; null on the last page',
      })
      nextCursor!: string | null;
    }
    Object.defineProperty(Page, 'name', { value: `${Model.name}Page` });
    page = Page;
    pages.set(Model, page);
  }
  return page;
}

/** A paginated list of `Model`: `{ items, nextCursor }`, and its query parameters. */
export function ApiPage(Model: Type<unknown>, description: string) {
  return applyDecorators(
    ApiPageQuery(),
    ApiResponse({ status: 200, description, type: PageOf(Model) }),
  );
}

/**
 * What every authenticated read can answer besides its success: 401, 503, and 404 when it
 * names one object (`notFound`), 400 when it takes query parameters (`query`).
 */
export function ApiRead(o: { notFound?: string; query?: boolean } = {}) {
  return ApiErrors(
    ...(o.query ? [400 as const] : []),
    401,
    ...(o.notFound ? [[404, o.notFound] as [404, string]] : []),
    503,
  );
}

/**
 * What every mutating call can answer besides its success: 400 (body or wait parameters),
 * 401, 403, 404 when it names objects, 409 for its conflicts, 413 (Fastify reads a JSON
 * body on any of them), 415 (a body that is not JSON), 503, and 504 for `?wait=applied`.
 * Also declares the wait parameters.
 */
export function ApiMutation(o: { notFound?: string; conflict?: string } = {}) {
  return applyDecorators(
    ApiWait(),
    ApiErrors(
      400,
      401,
      403,
      ...(o.notFound ? [[404, o.notFound] as [404, string]] : []),
      ...(o.conflict ? [[409, o.conflict] as [409, string]] : []),
      413,
      415,
      503,
      504,
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Bodies shared by several resources.

/** `appliedInMs` of a mutating answer, for the view classes to extend. */
export const APPLIED_IN_MS = {
  type: 'integer',
  minimum: 0,
  description: 'with `?wait=applied`: milliseconds until the affected agents had applied it',
} as const;

/** The answer to a DELETE. */
export class Deleted {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty()
  name!: string;

  @ApiProperty({ type: 'boolean', enum: [true] })
  deleted!: true;

  @ApiProperty({ type: 'integer', minimum: 1, description: 'the revision of the deletion' })
  revision!: number;

  @ApiPropertyOptional(APPLIED_IN_MS)
  appliedInMs?: number;
}
