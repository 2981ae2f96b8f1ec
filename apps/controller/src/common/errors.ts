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
import type { FastifyReply } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { QueryFailedError } from 'typeorm';

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

/** Flattens class-validator errors (nested ones as `a.b`, arrays as `a[0].b`). */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    const field = parent
      ? /^\d+$/.test(e.property)
        ? `${parent}[${e.property}]`
        : `${parent}.${e.property}`
      : e.property;
    if (e.constraints) out.push({ field, errors: Object.values(e.constraints) });
    if (e.children?.length) out.push(...flattenValidationErrors(e.children, field));
  }
  return out;
}

/** Constraint names of the schema, translated to what an operator should read. */
const CONSTRAINT_MESSAGES: Record<string, string> = {
  hosts_name_key: 'a host with this name already exists',
  hosts_underlay_ip_key: 'a host with this underlay IP already exists',
  networks_name_key: 'a network with this name already exists',
  networks_vlan_id_key: 'this VLAN id is already used by another network',
  networks_vni_key: 'this VNI is already used by another network',
  networks_routable_no_overlap:
    'the CIDR overlaps a routable network (block-based or attached to a router)',
  instances_name_key: 'an instance with this name already exists',
  instances_mac_key: 'this MAC address is already in use',
  instances_network_ip: 'this IP address is already in use in the network',
  host_blocks_no_overlap: 'the host block overlaps another block',
  host_blocks_pkey: 'the host block is already allocated',
  routers_name_key: 'a router with this name already exists',
};

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
    return {
      statusCode: status,
      error: STATUS_CODES[status] ?? 'Error',
      message: typeof r === 'string' ? r : e.message,
    };
  }
  if (e instanceof QueryFailedError) {
    const d = e.driverError as { code?: string; constraint?: string; detail?: string };
    if (d.code === '23505' || d.code === '23P01' || d.code === '23503') {
      const message =
        (d.constraint && CONSTRAINT_MESSAGES[d.constraint]) ??
        (d.code === '23503'
          ? 'the object is still referenced'
          : 'conflicts with an existing object');
      return {
        statusCode: 409,
        error: 'Conflict',
        message,
        details: { constraint: d.constraint, detail: d.detail },
      };
    }
    if (d.code === '23514') {
      return {
        statusCode: 400,
        error: 'Bad Request',
        message: 'the values violate a schema rule',
        details: { constraint: d.constraint },
      };
    }
  }
  // Errors raised by Fastify while reading the request (body too large, malformed JSON).
  const http = e as { statusCode?: number; message?: string };
  if (typeof http?.statusCode === 'number' && http.statusCode >= 400 && http.statusCode < 500) {
    return {
      statusCode: http.statusCode,
      error: STATUS_CODES[http.statusCode] ?? 'Error',
      message: http.message ?? '',
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
    if (body.statusCode >= 500 && body.statusCode !== 503) {
      this.log.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    }
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    void reply.status(body.statusCode).header('content-type', 'application/json').send(body);
  }
}
