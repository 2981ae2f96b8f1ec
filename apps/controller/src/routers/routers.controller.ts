import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiIdOrName, ApiMutation, ApiOp, ApiPage, ApiRead, Deleted } from '../common/openapi.js';
import { PageQuery } from '../common/pagination.js';
import { CreateRouterDto, UpdateRouterDto } from './router.dto.js';
import { ChangedRouter, Router } from './router.views.js';
import { RoutersService } from './routers.service.js';

const ATTACH_CONFLICT =
  'The name is taken, or an attached network would overlap another routable network.';

@ApiTags('routers')
@ApiBearerAuth()
@Controller('routers')
export class RoutersController {
  constructor(private readonly routers: RoutersService) {}

  @Post()
  @ApiOp(
    'createRouter',
    'Create a router',
    'Creates a distributed router, optionally attached to networks (by id or name). Every ' +
      'host with instances of an attached network routes between them; an attached network ' +
      'becomes routable, so its CIDR may not overlap another routable network.',
  )
  @ApiResponse({ status: 201, description: 'The router.', type: ChangedRouter })
  @ApiMutation({ notFound: 'No such network.', conflict: ATTACH_CONFLICT })
  create(@Body() dto: CreateRouterDto) {
    return this.routers.create(dto.name, dto.networks);
  }

  @Get()
  @ApiOp('listRouters', 'List routers', 'Routers in name order, with their attached networks.')
  @ApiPage(Router, 'A page of routers.')
  @ApiRead({ query: true })
  list(@Query() q: PageQuery) {
    return this.routers.list(q);
  }

  @Get(':idOrName')
  @ApiOp('getRouter', 'Get a router', 'One router, with its attached networks.')
  @ApiIdOrName('router')
  @ApiResponse({ status: 200, description: 'The router.', type: Router })
  @ApiRead({ notFound: 'No such router.' })
  get(@Param('idOrName') idOrName: string) {
    return this.routers.get(idOrName);
  }

  @Patch(':idOrName')
  @ApiOp(
    'updateRouter',
    "Change a router's networks",
    'Either `networks` (the whole new set) or `attach`/`detach` (changes to it); both at once ' +
      'is a 400.',
  )
  @ApiIdOrName('router')
  @ApiResponse({ status: 200, description: 'The router as changed.', type: ChangedRouter })
  @ApiMutation({
    notFound: 'No such router or network.',
    conflict: 'An attached network would overlap another routable network.',
  })
  update(@Param('idOrName') idOrName: string, @Body() dto: UpdateRouterDto) {
    return this.routers.update(idOrName, dto);
  }

  @Delete(':idOrName')
  @HttpCode(200)
  @ApiOp(
    'deleteRouter',
    'Delete a router',
    'Deletes a router; its networks are detached (and stop being routable unless block-based).',
  )
  @ApiIdOrName('router')
  @ApiResponse({ status: 200, description: 'The router is deleted.', type: Deleted })
  @ApiMutation({ notFound: 'No such router.' })
  delete(@Param('idOrName') idOrName: string) {
    return this.routers.delete(idOrName);
  }
}
