import {
  CallHandler,
  ExecutionContext,
  GatewayTimeoutException,
  Injectable,
  NestInterceptor,
} from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { from, mergeMap, type Observable } from 'rxjs';
import { InvalidInput } from '../common/errors.js';
import { AgentSessions } from './agent-sessions.service.js';

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_TIMEOUT_MS = 600_000;

/**
 * `?wait=applied&timeoutMs=N` on any mutating call (like `ovn-nbctl --wait=hv`): the
 * response is held until every connected agent of a host the change affected has applied
 * its revision; on timeout, 504 listing the lagging hosts (the change itself is committed).
 * The parameters are checked before the change runs.
 */
@Injectable()
export class WaitAppliedInterceptor implements NestInterceptor {
  constructor(private readonly agents: AgentSessions) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = ctx.switchToHttp().getRequest<FastifyRequest>();
    const q = (req.query ?? {}) as Record<string, unknown>;
    if (
      req.method === 'GET' ||
      req.method === 'HEAD' ||
      (q.wait === undefined && q.timeoutMs === undefined)
    ) {
      return next.handle();
    }
    const problems = [];
    if (q.wait !== 'applied') problems.push({ field: 'wait', errors: ['wait must be "applied"'] });
    const timeoutMs = q.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : Number(q.timeoutMs);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      problems.push({
        field: 'timeoutMs',
        errors: [`timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS}`],
      });
    }
    if (problems.length > 0) throw new InvalidInput(problems);
    return next.handle().pipe(
      mergeMap((body: unknown) =>
        from(
          (async () => {
            const revision = (body as { revision?: unknown } | null)?.revision;
            if (typeof revision !== 'number') return body;
            const started = Date.now();
            const r = await this.agents.waitApplied(revision, timeoutMs);
            if (!r.applied) {
              throw new GatewayTimeoutException({
                statusCode: 504,
                error: 'Gateway Timeout',
                message: `revision ${revision} is committed but not yet applied by ${r.lagging.length} host(s) after ${timeoutMs} ms`,
                details: { revision, lagging: r.lagging, result: body },
              });
            }
            return { ...(body as object), appliedInMs: Date.now() - started };
          })(),
        ),
      ),
    );
  }
}
