import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiIdOrName, ApiMutation, ApiOp, ApiPage, ApiRead, Deleted } from '../common/openapi.js';
import {
  BulkCreateInstancesDto,
  CreateInstanceDto,
  InstanceListQuery,
  UpdateInstanceDto,
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
    'Instances in name order, optionally of one network, on one host and/or with one label ' +
      '(`label=key=value`, an equality selector).',
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
    'updateInstance',
    'Move or relabel an instance',
    'Moves an instance to another host keeping its IP and MAC (mobility) — `host` — and/or ' +
      'replaces its labels — `labels`, the whole set; at least one of them (400 otherwise), both ' +
      'in one revision. Instances of block-based models take their address from the ' +
      "host's block and cannot move (409). A change of labels alone changes no host's " +
      'desired state (no host gets a new desired revision).',
  )
  @ApiIdOrName('instance')
  @ApiResponse({ status: 200, description: 'The instance as changed.', type: ChangedInstance })
  @ApiMutation({
    notFound: 'No such instance or host.',
    conflict: 'The network is block-based: delete and recreate the instance instead.',
  })
  update(@Param('idOrName') idOrName: string, @Body() dto: UpdateInstanceDto) {
    return this.instances.update(idOrName, dto);
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
