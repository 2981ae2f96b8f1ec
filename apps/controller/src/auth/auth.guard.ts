import {
  CanActivate,
  ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  SetMetadata,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { tokensEqual } from './tokens.js';

export type Role = 'admin' | 'viewer';

/** The API tokens in force: `{ token → role }`. */
export const API_TOKENS = Symbol('lattice.apiTokens');
export interface ApiTokens {
  readonly admin: string;
  readonly viewer?: string;
}

const PUBLIC = 'lattice:public';
/** Marks a route that needs no token (health, the dashboard shell). */
export const Public = () => SetMetadata(PUBLIC, true);

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The token of an `Authorization: Bearer <token>` header, if it is one. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
}

/**
 * `Authorization: Bearer <token>` on every route but the public ones. The admin token may
 * do everything; the viewer token only reads.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(API_TOKENS) private readonly tokens: ApiTokens,
  ) {}

  canActivate(ctx: ExecutionContext): boolean {
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, [ctx.getHandler(), ctx.getClass()]))
      return true;
    const req = ctx.switchToHttp().getRequest<FastifyRequest>();
    const token = bearerToken(req.headers.authorization);
    if (!token) throw new UnauthorizedException('missing bearer token');
    const role = this.roleOf(token);
    if (!role) throw new UnauthorizedException('invalid token');
    if (role !== 'admin' && !READ_METHODS.has(req.method)) {
      throw new ForbiddenException('this token may only read; mutating calls need the admin token');
    }
    return true;
  }

  private roleOf(token: string): Role | undefined {
    if (tokensEqual(token, this.tokens.admin)) return 'admin';
    if (this.tokens.viewer && tokensEqual(token, this.tokens.viewer)) return 'viewer';
    return undefined;
  }
}
