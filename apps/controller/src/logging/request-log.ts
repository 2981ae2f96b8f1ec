import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Level } from 'pino';
import type { NestPinoLogger } from './logger.js';

/**
 * One log line per HTTP request, written when its response is sent (Fastify's own hooks, so
 * every request is logged: API routes, `/`, the docs, 404s, requests refused before routing
 * such as 413):
 *
 * `{"level":"info",…,"context":"http","reqId":"…","method":"GET","path":"/api/v1/hosts?limit=5",
 *   "status":200,"durationMs":1.8,"msg":"GET /api/v1/hosts?limit=5 200"}`
 *
 * The level follows the outcome: below 500 `info` (a 4xx is the client's business, never a
 * fault of the controller), 503 (database unreachable) and 504 (`?wait=applied` timed out)
 * `warn` with their reason, any other 5xx `error` with the error and its stack.
 *
 * The request id is the client's `x-request-id` when it is a plausible one (1-128 visible
 * ASCII characters), a new UUID otherwise; it is echoed in the `x-request-id` response header.
 */

export const REQUEST_ID_HEADER = 'x-request-id';
const PLAUSIBLE_ID = /^[\x21-\x7e]{1,128}$/;

/** Fastify's `genReqId`: the client's request id when plausible, else a new UUID. */
export function requestId(req: IncomingMessage): string {
  const h = req.headers[REQUEST_ID_HEADER];
  const given = Array.isArray(h) ? h[0] : h;
  return given !== undefined && PLAUSIBLE_ID.test(given) ? given : randomUUID();
}

/** What the exception filter adds to a request's line: a fault, or a 503/504's reason. */
interface Outcome {
  err?: unknown;
  reason?: string;
}

/** Requests being logged (by their raw request), with the outcome noted for their line. */
const logged = new WeakMap<object, Outcome>();

const keyOf = (req: FastifyRequest | IncomingMessage): object => (req as FastifyRequest).raw ?? req;

/**
 * Called by the exception filter for a 5xx: a 500 carries its error (logged with its stack
 * on the request's line), a 503 or 504 its reason. Returns false when the request is not
 * logged by this module (the caller then logs the error itself).
 */
export function noteOutcome(
  req: FastifyRequest | IncomingMessage,
  status: number,
  error: unknown,
  message: string,
): boolean {
  const outcome = logged.get(keyOf(req));
  if (!outcome) return false;
  if (status === 503 || status === 504) {
    const cause = error instanceof Error && error.message !== message ? error.message : undefined;
    outcome.reason = cause ? `${message}: ${cause}` : message;
  } else {
    outcome.err = error;
  }
  return true;
}

export function levelOf(status: number): Level {
  if (status < 500) return 'info';
  if (status === 503 || status === 504) return 'warn';
  return 'error';
}

/** `?token=…` (or `access_token`) never reaches the log, should a client send one. */
const redact = (url: string) => url.replace(/([?&](?:access_)?token=)[^&]*/gi, '$1[redacted]');

/** Installs the request id, its echo and the request lines on the application's Fastify. */
export function useRequestLogging(fastify: FastifyInstance, logger: NestPinoLogger): void {
  fastify.setGenReqId(requestId);
  fastify.addHook('onRequest', (request, reply, done) => {
    logged.set(request.raw, {});
    void reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    const level = levelOf(status);
    const outcome = logged.get(request.raw) ?? {};
    logged.delete(request.raw);
    if (logger.pino.isLevelEnabled(level)) {
      const path = redact(request.url);
      logger.pino[level](
        {
          context: 'http',
          reqId: request.id,
          method: request.method,
          path,
          status,
          durationMs: Math.round(reply.elapsedTime * 10) / 10,
          ip: request.ip,
          ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
          ...(outcome.err !== undefined ? { err: outcome.err } : {}),
        },
        `${request.method} ${path} ${status}`,
      );
    }
    done();
  });
}
