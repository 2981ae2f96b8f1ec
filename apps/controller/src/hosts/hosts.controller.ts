import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { PageQuery } from '../common/pagination.js';
import { CreateHostDto, UpdateHostDto } from './host.dto.js';
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
  create(@Body() dto: CreateHostDto) {
    return this.hosts.create(dto);
  }

  @Get()
  list(@Query() q: PageQuery) {
    return this.hosts.list(q);
  }

  @Get(':idOrName')
  get(@Param('idOrName') idOrName: string) {
    return this.hosts.get(idOrName);
  }

  @Patch(':idOrName')
  update(@Param('idOrName') idOrName: string, @Body() dto: UpdateHostDto) {
    return this.hosts.update(idOrName, dto);
  }

  /** The host's full desired state at the latest revision, resources in apply order. */
  @Get(':idOrName/desired-state')
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
  rotateToken(@Param('idOrName') idOrName: string) {
    return this.hosts.rotateToken(idOrName);
  }

  @Delete(':idOrName')
  @HttpCode(200)
  delete(@Param('idOrName') idOrName: string) {
    return this.hosts.delete(idOrName);
  }
}
