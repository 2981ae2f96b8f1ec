import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { PageQuery } from '../common/pagination.js';
import { CreateHostDto } from './host.dto.js';
import { HostsService } from './hosts.service.js';

@ApiTags('hosts')
@ApiBearerAuth()
@Controller('hosts')
export class HostsController {
  constructor(private readonly hosts: HostsService) {}

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

  @Delete(':idOrName')
  @HttpCode(200)
  delete(@Param('idOrName') idOrName: string) {
    return this.hosts.delete(idOrName);
  }
}
