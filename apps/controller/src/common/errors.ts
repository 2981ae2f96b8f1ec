import {
  ArgumentsHost,
  BadRequestException,
  Catch,
  ConflictException,
  ExceptionFilter,
  HttpException,
  Logger,
  ValidationError,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { QueryFailedError } from 'typeorm';
import { shownKey } from './text.js';
import { noteOutcome } from '../logging/request-log.js';

/** The one error body of the API: `{ statusCode, error, message, details? }`. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  details?: unknown;
}

export interface FieldError {
  field: string;
  errors: string[];
}

/** 400 naming every offending field. */
export class InvalidInput extends BadRequestException {
  constructor(details: FieldError[]) {
    super({
      statusCode: 400,
      error: 'Bad Request',
      message: `invalid ${details.map((d) => d.field).join(', ')}`,
      details,
    });
  }
  static field(field: string, error: string): InvalidInput {
    return new InvalidInput([{ field, errors: [error] }]);
  }
}

export class Conflict extends ConflictException {
  constructor(message: string, details?: unknown) {
    super({ statusCode: 409, error: 'Conflict', message, details });
  }
}

/**
 * The constraints that say what a value is (its type, whether it may be there at all):
 * when one of them failed, its message is the one given, since the others (a pattern, a
 * range) only repeat it less clearly.
 */
const FIRST_CONSTRAINTS = [
  'whitelistValidation',
  'isDefined',
  'nestedValidation',
  'isArray',
  'isObject',
  'isString',
  'isInt',
  'isNumber',
  'isBoolean',
  'isIn',
  'isEnum',
];

/** The one message for a field that failed `constraints` (name → message). */
function oneMessage(constraints: Record<string, string>): string {
  const first = FIRST_CONSTRAINTS.find((c) => constraints[c] !== undefined);
  return first ? constraints[first] : Object.values(constraints)[0];
}

/**
 * Flattens class-validator errors (nested ones as `a.b`, arrays as `a[0].b`), one message
 * per field: the most telling of those its failed rules give.
 */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    // A property name that is not storable text (an unknown key holding a NUL) is escaped.
    const property = shownKey(e.property);
    const field = parent
      ? /^\d+$/.test(property)
        ? `${parent}[${property}]`
        : `${parent}.${property}`
      : property;
    if (e.constraints && Object.keys(e.constraints).length > 0) {
      out.push({ field, errors: [oneMessage(e.constraints)] });
    }
    if (e.children?.length) out.push(...flattenValidationErrors(e.children, field));
  }
  return out;
}

/**
 * What a constraint of the schema protects, in the API's words: the message, and the
 * object and field (as the API names them) that a 409's `details` carry. The constraint's
 * own name and PostgreSQL's detail text never reach a client.
 */
interface ConstraintMeaning {
  message: string;
  object: string;
  field?: string;
}

const CONSTRAINTS: Record<string, ConstraintMeaning> = {
  hosts_name_key: {
    message: 'a host with this name already exists',
    object: 'host',
    field: 'name',
  },
  hosts_underlay_ip_key: {
    message: 'a host with this underlay IP already exists',
    object: 'host',
    field: 'underlayIp',
  },
  networks_name_key: {
    message: 'a network with this name already exists',
    object: 'network',
    field: 'name',
  },
  networks_vlan_id_key: {
    message: 'this VLAN id is already used by another network',
    object: 'network',
    field: 'vlanId',
  },
  networks_vni_key: {
    message: 'this VNI is already used by another network',
    object: 'network',
    field: 'vni',
  },
  networks_routable_no_overlap: {
    message: 'the CIDR overlaps a routable network (block-based or attached to a router)',
    object: 'network',
    field: 'cidr',
  },
  instances_name_key: {
    message: 'an instance with this name already exists',
    object: 'instance',
    field: 'name',
  },
  instances_mac_key: {
    message: 'this MAC address is already in use',
    object: 'instance',
    field: 'mac',
  },
  instances_network_ip: {
    message: 'this IP address is already in use in the network',
    object: 'instance',
    field: 'ip',
  },
  host_blocks_no_overlap: {
    message: "the host's address block overlaps another block of the network: retry",
    object: 'instance',
    field: 'host',
  },
  host_blocks_pkey: {
    message: "the host's address block is already allocated: retry",
    object: 'instance',
    field: 'host',
  },
  routers_name_key: {
    message: 'a router with this name already exists',
    object: 'router',
    field: 'name',
  },
  policies_name_key: {
    message: 'a policy with this name already exists',
    object: 'policy',
    field: 'name',
  },
  floating_ip_pools_name_key: {
    message: 'a floating IP pool with this name already exists',
    object: 'floating IP pool',
    field: 'name',
  },
  floating_ip_pools_no_overlap: {
    message: 'the CIDR overlaps another floating IP pool',
    object: 'floating IP pool',
    field: 'cidr',
  },
  floating_ips_address_key: {
    message: 'this floating IP is already allocated',
    object: 'floating IP',
    field: 'address',
  },
  floating_ips_instance_id_key: {
    message: 'the instance already has a floating IP',
    object: 'floating IP',
    field: 'instance',
  },
  join_tokens_name_key: {
    message: 'a join token with this name already exists',
    object: 'join token',
    field: 'name',
  },
};

/** Tables as the API names what their rows are (for keys and checks not listed above). */
const OBJECTS: Record<string, string> = {
  hosts: 'host',
  networks: 'network',
  instances: 'instance',
  routers: 'router',
  policies: 'policy',
  join_tokens: 'join token',
  floating_ip_pools: 'floating IP pool',
  floating_ips: 'floating IP',
  router_networks: 'router attachment',
  host_blocks: "host's address block",
  free_addresses: 'free address range',
  free_blocks: 'free block range',
};

/** `underlay_ip` → `underlayIp`. */
const camel = (column: string) => column.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/**
 * The value a unique or exclusion violation is about, from PostgreSQL's detail
 * (`Key (network_id, ip)=(…, 10.0.0.5) already exists.`): the last column's value, which is
 * the one the request set (the others are the ids the API resolved).
 */
function conflictingValue(detail: string | undefined): string | undefined {
  const m = /^Key \(([^)]*)\)=\((.*?)\)( already exists| conflicts with)/.exec(detail ?? '');
  if (!m) return undefined;
  const values = m[2].split(', ');
  return values.length === m[1].split(', ').length ? values[values.length - 1] : undefined;
}

/** A constraint violation as the API says it: 409 (unique, exclusion, reference) or 400. */
function constraintBody(d: {
  code?: string;
  constraint?: string;
  table?: string;
  column?: string;
  detail?: string;
}): ErrorBody | undefined {
  const known = d.constraint ? CONSTRAINTS[d.constraint] : undefined;
  const object = known?.object ?? (d.table ? OBJECTS[d.table] : undefined);
  if (d.code === '23505' || d.code === '23P01') {
    const value = conflictingValue(d.detail);
    return {
      statusCode: 409,
      error: 'Conflict',
      message: known?.message ?? `conflicts with an existing ${object ?? 'object'}`,
      ...(object
        ? {
            details: {
              object,
              ...(known?.field ? { field: known.field } : {}),
              ...(value !== undefined ? { value } : {}),
            },
          }
        : {}),
    };
  }
  if (d.code === '23503') {
    // `<table>_<object>_id_fkey`: a row of `table` refers to a host, network or router. A
    // delete of one still referred to (the services check this first; a race can still get
    // here), or a row referring to one deleted meanwhile.
    const referenced =
      (d.table &&
        new RegExp(`^${d.table}_(host|network|router|instance|pool)_id_fkey$`).exec(
          d.constraint ?? '',
        )?.[1]) ||
      'object';
    const by = object ?? 'another object';
    return /is still referenced/.test(d.detail ?? '')
      ? {
          statusCode: 409,
          error: 'Conflict',
          message: `the ${referenced} is still in use: a ${by} refers to it`,
          details: { object: referenced },
        }
      : {
          statusCode: 409,
          error: 'Conflict',
          message: `the ${referenced} this ${by} refers to was deleted meanwhile`,
          details: { object: by, field: referenced },
        };
  }
  if (d.code === '23514' || d.code === '23502') {
    // A column's own check is named `<table>_<column>_check`; a not-null violation names it.
    const column =
      d.column ??
      (d.table && d.constraint?.startsWith(`${d.table}_`) && d.constraint.endsWith('_check')
        ? d.constraint.slice(d.table.length + 1, -'_check'.length) || undefined
        : undefined);
    const field = column ? camel(column) : undefined;
    const message = `the values break a rule of the ${object ?? 'object'}`;
    return {
      statusCode: 400,
      error: 'Bad Request',
      message,
      ...(field ? { details: [{ field, errors: [`${field}: ${message}`] }] } : {}),
    };
  }
  return undefined;
}

const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  // terminating connection because another server process crashed
  '57P02',
  '57P03',
  '08006',
  '08001',
  '08003',
]);

/**
 * The database went away or is unreachable (as opposed to refusing what was sent).
 * TypeORM releases a query runner as soon as its connection reports an error, so a work
 * still running on it when the server dies gets `QueryRunnerAlreadyReleasedError`: a lost
 * connection too (this code releases its runners only after their last statement). A
 * statement unanswered past the pool's `query_timeout` (a network that dropped without a
 * reset) counts as the database being unreachable.
 */
export function isDatabaseDown(e: unknown): boolean {
  const err = e as {
    code?: string;
    name?: string;
    message?: string;
    driverError?: { code?: string };
  };
  const code = err?.driverError?.code ?? err?.code;
  return (
    (typeof code === 'string' && CONNECTION_ERRORS.has(code)) ||
    err?.name === 'QueryRunnerAlreadyReleasedError' ||
    /Connection terminated|ECONNREFUSED|ECONNRESET|not queryable|Client has encountered a connection error|timeout exceeded when trying to connect|Query read timeout/i.test(
      err?.message ?? '',
    )
  );
}

/** The message of a 400 for a value PostgreSQL refused (see `toErrorBody`). */
export const REFUSED_VALUE = 'a value of the request is not one the API accepts';

const dataLog = new Logger('api');

/** Fastify's messages for what it refuses while reading a request, in the API's words. */
const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE:
    'the body must be JSON: send it with content-type application/json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'the content-length does not match the body',
  FST_ERR_CTP_BODY_TOO_LARGE: 'the body is larger than the limit (LATTICE_BODY_LIMIT)',
};

/** Maps any error to the API's error body; database constraint violations become 409s. */
export function toErrorBody(e: unknown): ErrorBody {
  if (e instanceof HttpException) {
    const status = e.getStatus();
    const r = e.getResponse();
    if (typeof r === 'object' && r !== null && 'message' in r) {
      const body = r as { message: unknown; error?: string; details?: unknown };
      const message = Array.isArray(body.message) ? body.message.join('; ') : String(body.message);
      return {
        statusCode: status,
        error: body.error ?? STATUS_CODES[status] ?? 'Error',
        message,
        ...(body.details !== undefined ? { details: body.details } : {}),
      };
    }
    // Fastify's errors (reading the body) arrive wrapped, with Fastify's error as the cause.
    const code = (e.cause as { code?: unknown } | undefined)?.code;
    return {
      statusCode: status,
      error: STATUS_CODES[status] ?? 'Error',
      message:
        (typeof code === 'string' ? FASTIFY_MESSAGES[code] : undefined) ??
        (typeof r === 'string' ? r : e.message),
    };
  }
  if (e instanceof QueryFailedError) {
    const d = e.driverError as { code?: string };
    const body = constraintBody(d);
    if (body) return body;
    // A value PostgreSQL refused as data (class 22: invalid text, out of range, too long).
    // The validators refuse such input before any query (input-pipe.ts): reaching here means
    // one missed it, so it is logged, but the client still learns its input was refused.
    if (typeof d.code === 'string' && d.code.startsWith('22')) {
      dataLog.warn(`a value the validators let through was refused by PostgreSQL: ${e.message}`);
      return { statusCode: 400, error: 'Bad Request', message: REFUSED_VALUE };
    }
  }
  // Errors raised by Fastify while reading the request (body too large, malformed JSON,
  // a content type the API does not read).
  const http = e as { statusCode?: number; message?: string; code?: string };
  if (typeof http?.statusCode === 'number' && http.statusCode >= 400 && http.statusCode < 500) {
    return {
      statusCode: http.statusCode,
      error: STATUS_CODES[http.statusCode] ?? 'Error',
      message: FASTIFY_MESSAGES[http.code ?? ''] ?? http.message ?? '',
    };
  }
  if (/timeout exceeded when trying to connect/.test((e as Error)?.message ?? '')) {
    return {
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'the database is busy: no connection became free in time; retry',
    };
  }
  if (isDatabaseDown(e)) {
    return {
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'the database is unreachable',
    };
  }
  return { statusCode: 500, error: 'Internal Server Error', message: 'internal error' };
}

@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly log = new Logger('api');

  catch(e: unknown, host: ArgumentsHost): void {
    const body = toErrorBody(e);
    // The request's own log line (logging/request-log.ts) reports the outcome: a 4xx at info,
    // a 503 or 504 at warn with its reason, a real fault (500) at error with its stack.
    const status = body.statusCode;
    const req = host.switchToHttp().getRequest<FastifyRequest>();
    if (status >= 500 && !noteOutcome(req, status, e, body.message)) {
      if (status === 503 || status === 504) this.log.warn(body.message);
      else this.log.error(e instanceof Error ? e : String(e));
    }
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    void reply.status(body.statusCode).header('content-type', 'application/json').send(body);
  }
}
