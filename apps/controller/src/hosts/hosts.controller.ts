import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiIdOrName, ApiMutation, ApiOp, ApiPage, ApiRead, Deleted } from '../common/openapi.js';
import { PageQuery } from '../common/pagination.js';
import { CreateHostDto, UpdateHostDto } from './host.dto.js';
import { ChangedHost, DesiredState, Host, HostWithAgentToken } from './host.views.js';
import { HostsService } from './hosts.service.js';
import { inApplyOrder } from '../../../../libs/engine/src/index.js';
import { DesiredStateService } from '../desired-state/desired-state.service.js';

@ApiTags('hosts')
@ApiBearerAuth()
@Controller('hosts')
export class HostsController {
  constructor(
    private readonly hosts: HostsService,
    private readonly desired: DesiredStateService,
  ) {}

  @Post()
  @ApiOp(
    'createHost',
    'Register a host',
    'Registers a host by name and underlay address. The answer carries the agent token, ' +
      'shown this once: only its hash is stored.',
  )
  @ApiResponse({
    status: 201,
    description: 'The host, with its agent token.',
    type: HostWithAgentToken,
  })
  @ApiMutation({ conflict: 'A host with this name or underlay IP already exists.' })
  create(@Body() dto: CreateHostDto) {
    return this.hosts.create(dto);
  }

  @Get()
  @ApiOp(
    'listHosts',
    'List hosts',
    'Hosts in name order, with their agent status, desired and applied revision and `inSync`.',
  )
  @ApiPage(Host, 'A page of hosts.')
  @ApiRead({ query: true })
  list(@Query() q: PageQuery) {
    return this.hosts.list(q);
  }

  @Get(':idOrName')
  @ApiOp('getHost', 'Get a host', 'One host, with its agent status and revisions.')
  @ApiIdOrName('host')
  @ApiResponse({ status: 200, description: 'The host.', type: Host })
  @ApiRead({ notFound: 'No such host.' })
  get(@Param('idOrName') idOrName: string) {
    return this.hosts.get(idOrName);
  }

  @Patch(':idOrName')
  @ApiOp(
    'updateHost',
    'Change a host',
    'Changes the underlay address, uplink, ASN (`null`: back to the default) or labels ' +
      '(the whole set); every host the change affects is sent the difference.',
  )
  @ApiIdOrName('host')
  @ApiResponse({ status: 200, description: 'The host as changed.', type: ChangedHost })
  @ApiMutation({ notFound: 'No such host.', conflict: 'Another host has this underlay IP.' })
  update(@Param('idOrName') idOrName: string, @Body() dto: UpdateHostDto) {
    return this.hosts.update(idOrName, dto);
  }

  /** The host's full desired state at the latest revision, resources in apply order. */
  @Get(':idOrName/desired-state')
  @ApiOp(
    'getHostDesiredState',
    "Get a host's desired state",
    'Every resource the host must have at the latest revision, in apply order: what a ' +
      'snapshot to its agent would carry.',
  )
  @ApiIdOrName('host')
  @ApiResponse({ status: 200, description: 'The desired state.', type: DesiredState })
  @ApiRead({ notFound: 'No such host.' })
  async desiredState(@Param('idOrName') idOrName: string) {
    const host = await this.hosts.get(idOrName);
    return this.desired.read(
      ({ revision, stateOf }) => ({
        host: host.name,
        hostId: host.id,
        revision,
        resources: inApplyOrder(stateOf(host.id)),
      }),
      { fresh: true },
    );
  }

  /** A new agent token for the host (shown once); the old one stops working. */
  @Post(':idOrName/agent-token')
  @HttpCode(200)
  @ApiOp(
    'rotateHostAgentToken',
    "Rotate a host's agent token",
    'Issues a new agent token (shown this once) and revokes the old one: an agent connected ' +
      'with it, on any replica, is disconnected and must come back with the new token. ' +
      'Takes no body.',
  )
  @ApiIdOrName('host')
  @ApiResponse({
    status: 200,
    description: 'The host, with its new agent token.',
    type: HostWithAgentToken,
  })
  @ApiMutation({ notFound: 'No such host.' })
  rotateToken(@Param('idOrName') idOrName: string) {
    return this.hosts.rotateToken(idOrName);
  }

  @Delete(':idOrName')
  @HttpCode(200)
  @ApiOp(
    'deleteHost',
    'Delete a host',
    'Deletes a host that has no instances left; its agent is disconnected.',
  )
  @ApiIdOrName('host')
  @ApiResponse({ status: 200, description: 'The host is deleted.', type: Deleted })
  @ApiMutation({
    notFound: 'No such host.',
    conflict: 'Instances still live on the host: delete or move them first.',
  })
  delete(@Param('idOrName') idOrName: string) {
    return this.hosts.delete(idOrName);
  }
}
