import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiPropertyOptional, ApiResponse, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';
import { NETWORK_MODELS } from '../../../../libs/model/src/index.js';
import { ApiIdOrName, ApiMutation, ApiOp, ApiPage, ApiRead, Deleted } from '../common/openapi.js';
import { PageQuery } from '../common/pagination.js';
import { CreateNetworkDto, UpdateNetworkDto } from './network.dto.js';
import { ChangedNetwork, Network } from './network.views.js';
import { NetworksService } from './networks.service.js';

class NetworkListQuery extends PageQuery {
  @ApiPropertyOptional({ enum: NETWORK_MODELS, description: 'only networks of this model' })
  @IsOptional()
  @IsIn(NETWORK_MODELS)
  model?: string;
}

@ApiTags('networks')
@ApiBearerAuth()
@Controller('networks')
export class NetworksController {
  constructor(private readonly networks: NetworksService) {}

  @Post()
  @ApiOp(
    'createNetwork',
    'Create a network',
    'Creates a network of any model. VLAN ids and VNIs come from their pools unless given; ' +
      'per-model defaults are filled in and returned.',
  )
  @ApiResponse({ status: 201, description: 'The network.', type: ChangedNetwork })
  @ApiMutation({
    conflict:
      'The name, VLAN id or VNI is taken, the CIDR overlaps a routable network or a floating IP pool, or the pool is exhausted.',
  })
  create(@Body() dto: CreateNetworkDto) {
    return this.networks.create(dto);
  }

  @Get()
  @ApiOp('listNetworks', 'List networks', 'Networks in name order, optionally of one model.')
  @ApiPage(Network, 'A page of networks.')
  @ApiRead({ query: true })
  list(@Query() q: NetworkListQuery) {
    return this.networks.list(q);
  }

  @Get(':idOrName')
  @ApiOp('getNetwork', 'Get a network', 'One network, with every per-model field.')
  @ApiIdOrName('network')
  @ApiResponse({ status: 200, description: 'The network.', type: Network })
  @ApiRead({ notFound: 'No such network.' })
  get(@Param('idOrName') idOrName: string) {
    return this.networks.get(idOrName);
  }

  @Patch(':idOrName')
  @ApiOp(
    'updateNetwork',
    'Change a network',
    'Changes what can change after creation: `natOutgoing` (egress through the hosts). ' +
      'Every other field is fixed at creation (a 400).',
  )
  @ApiIdOrName('network')
  @ApiResponse({ status: 200, description: 'The network as changed.', type: ChangedNetwork })
  @ApiMutation({ notFound: 'No such network.' })
  update(@Param('idOrName') idOrName: string, @Body() dto: UpdateNetworkDto) {
    return this.networks.update(idOrName, dto);
  }

  @Delete(':idOrName')
  @HttpCode(200)
  @ApiOp(
    'deleteNetwork',
    'Delete a network',
    'Deletes a network without instances and not attached to a router; its VLAN id or VNI ' +
      'returns to the pool.',
  )
  @ApiIdOrName('network')
  @ApiResponse({ status: 200, description: 'The network is deleted.', type: Deleted })
  @ApiMutation({
    notFound: 'No such network.',
    conflict: 'Instances still exist in the network, or a router is attached to it.',
  })
  delete(@Param('idOrName') idOrName: string) {
    return this.networks.delete(idOrName);
  }
}
