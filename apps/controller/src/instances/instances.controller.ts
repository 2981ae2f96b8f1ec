import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiIdOrName, ApiMutation, ApiOp, ApiPage, ApiRead, Deleted } from '../common/openapi.js';
import {
  BulkCreateInstancesDto,
  CreateInstanceDto,
  InstanceListQuery,
  MoveInstanceDto,
} from './instance.dto.js';
import { ChangedInstance, CreatedInstances, Instance } from './instance.views.js';
import { InstancesService } from './instances.service.js';

const CREATE_CONFLICT =
  'The name, IP or MAC is in use, the IP is outside the network (or the host block), or the ' +
  'network (or the host block space) has no free address left.';

@ApiTags('instances')
@ApiBearerAuth()
@Controller('instances')
export class InstancesController {
  constructor(private readonly instances: InstancesService) {}

  @Post()
  @ApiOp(
    'createInstance',
    'Create an instance',
    'Creates an instance (VM or container) of a network on a host, naming both by id or ' +
      "name. IP and MAC are allocated unless given; for block-based models the IP comes from the host's block, " +
      'claimed on demand.',
  )
  @ApiResponse({ status: 201, description: 'The instance.', type: ChangedInstance })
  @ApiMutation({ notFound: 'No such network or host.', conflict: CREATE_CONFLICT })
  create(@Body() dto: CreateInstanceDto) {
    return this.instances.create(dto);
  }

  @Post('bulk')
  @ApiOp(
    'createInstances',
    'Create instances in bulk',
    'Creates up to 1,000 instances in one transaction and one revision: all or none. A 400 ' +
      'or 409 names the offending item as `instances[i]`.',
  )
  @ApiResponse({ status: 201, description: 'The instances.', type: CreatedInstances })
  @ApiMutation({ notFound: 'No such network or host.', conflict: CREATE_CONFLICT })
  createBulk(@Body() dto: BulkCreateInstancesDto) {
    return this.instances.createBulk(dto.instances);
  }

  @Get()
  @ApiOp(
    'listInstances',
    'List instances',
    'Instances in name order, optionally of one network and/or on one host.',
  )
  @ApiPage(Instance, 'A page of instances.')
  @ApiRead({ query: true, notFound: 'No such network or host (filters).' })
  list(@Query() q: InstanceListQuery) {
    return this.instances.list(q);
  }

  @Get(':idOrName')
  @ApiOp('getInstance', 'Get an instance', 'One instance, with its state.')
  @ApiIdOrName('instance')
  @ApiResponse({ status: 200, description: 'The instance.', type: Instance })
  @ApiRead({ notFound: 'No such instance.' })
  get(@Param('idOrName') idOrName: string) {
    return this.instances.get(idOrName);
  }

  @Patch(':idOrName')
  @ApiOp(
    'moveInstance',
    'Move an instance',
    'Moves an instance to another host keeping its IP and MAC (mobility). Instances of ' +
      "block-based models take their address from the host's block and cannot move (409).",
  )
  @ApiIdOrName('instance')
  @ApiResponse({ status: 200, description: 'The instance on its new host.', type: ChangedInstance })
  @ApiMutation({
    notFound: 'No such instance or host.',
    conflict: 'The network is block-based: delete and recreate the instance instead.',
  })
  move(@Param('idOrName') idOrName: string, @Body() dto: MoveInstanceDto) {
    return this.instances.move(idOrName, dto.host);
  }

  @Delete(':idOrName')
  @HttpCode(200)
  @ApiOp(
    'deleteInstance',
    'Delete an instance',
    'Deletes an instance; its IP and MAC are free again.',
  )
  @ApiIdOrName('instance')
  @ApiResponse({ status: 200, description: 'The instance is deleted.', type: Deleted })
  @ApiMutation({ notFound: 'No such instance.' })
  delete(@Param('idOrName') idOrName: string) {
    return this.instances.delete(idOrName);
  }
}
