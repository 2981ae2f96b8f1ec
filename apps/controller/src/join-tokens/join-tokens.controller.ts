import type { FastifyRequest } from 'fastify';
import {
  Body,
  CanActivate,
  ExecutionContext,
  Injectable,
  UseGuards,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
} from '@nestjs/common';
import { ApiBearerAuth, ApiResponse, ApiTags } from '@nestjs/swagger';
import { bearerToken, Public } from '../auth/auth.guard.js';
import {
  ApiErrors,
  ApiIdOrName,
  ApiMutation,
  ApiOp,
  ApiPage,
  ApiRead,
  ApiWait,
} from '../common/openapi.js';
import { PageQuery } from '../common/pagination.js';
import { CreateHostDto } from '../hosts/host.dto.js';
import { CreateJoinTokenDto } from './join-token.dto.js';
import {
  JoinedHost,
  JoinToken,
  JoinTokenWithSecret,
  RevokedJoinToken,
} from './join-token.views.js';
import { JoinTokensService } from './join-tokens.service.js';

@ApiTags('join-tokens')
@ApiBearerAuth()
@Controller('join-tokens')
export class JoinTokensController {
  constructor(private readonly tokens: JoinTokensService) {}

  @Post()
  @ApiOp(
    'createJoinToken',
    'Create a join token',
    'A token agents trade for a host of their own (`POST /join`): valid for `ttlSeconds`, for ' +
      'at most `maxUses` joins. The token is shown this once; only its hash is stored.',
  )
  @ApiResponse({
    status: 201,
    description: 'The join token, with its secret.',
    type: JoinTokenWithSecret,
  })
  @ApiMutation({ conflict: 'A join token with this name exists.' })
  create(@Body() dto: CreateJoinTokenDto) {
    return this.tokens.create(dto);
  }

  @Get()
  @ApiOp(
    'listJoinTokens',
    'List join tokens',
    'Join tokens in name order, with their state and uses.',
  )
  @ApiPage(JoinToken, 'A page of join tokens.')
  @ApiRead({ query: true })
  list(@Query() q: PageQuery) {
    return this.tokens.list(q);
  }

  @Get(':idOrName')
  @ApiOp('getJoinToken', 'Get a join token', 'One join token (never its secret).')
  @ApiIdOrName('join token')
  @ApiResponse({ status: 200, description: 'The join token.', type: JoinToken })
  @ApiRead({ notFound: 'No such join token.' })
  get(@Param('idOrName') idOrName: string) {
    return this.tokens.get(idOrName);
  }

  @Delete(':idOrName')
  @HttpCode(200)
  @ApiOp(
    'revokeJoinToken',
    'Revoke a join token',
    'No agent may join with it from now on (hosts that joined keep their agent tokens). The ' +
      'token stays listed as `revoked`; revoking it again changes nothing.',
  )
  @ApiIdOrName('join token')
  @ApiResponse({ status: 200, description: 'The join token, revoked.', type: RevokedJoinToken })
  @ApiMutation({ notFound: 'No such join token.' })
  revoke(@Param('idOrName') idOrName: string) {
    return this.tokens.revoke(idOrName);
  }
}

/** `POST /join` is refused for its token before its body is read, like every other route. */
@Injectable()
export class JoinTokenGuard implements CanActivate {
  constructor(private readonly tokens: JoinTokensService) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<FastifyRequest>();
    await this.tokens.check(bearerToken(req.headers.authorization));
    return true;
  }
}

@ApiTags('join-tokens')
@ApiBearerAuth('joinToken')
@Controller('join')
export class JoinController {
  constructor(private readonly tokens: JoinTokensService) {}

  @Post()
  @Public()
  @ApiOp(
    'joinHost',
    'Join: an agent registers its own host',
    'Authenticated by a join token (`Authorization: Bearer <join token>`), not an API token. ' +
      "Registers the host (the join token's labels added to its own) and answers its agent " +
      'token, shown this once. A taken name is a 409, unless no agent ever connected as that ' +
      'host (an admin registered it ahead) or the join token allows re-joins: then the host ' +
      'takes the underlay address, uplink and labels given and a new agent token, and the old ' +
      'one stops working.',
  )
  @ApiResponse({ status: 201, description: 'The host, with its agent token.', type: JoinedHost })
  @ApiWait()
  @ApiErrors(
    400,
    [
      401,
      'No join token, or one that is unknown, expired, used up or revoked (the message says which).',
    ],
    [
      409,
      'The name is taken by a host whose agent has connected, or the underlay IP by another host.',
    ],
    413,
    415,
    503,
    504,
  )
  @UseGuards(JoinTokenGuard)
  join(@Headers('authorization') authorization: string | undefined, @Body() dto: CreateHostDto) {
    return this.tokens.join(bearerToken(authorization), dto);
  }
}
