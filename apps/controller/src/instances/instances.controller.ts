import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import {
  BulkCreateInstancesDto,
  CreateInstanceDto,
  InstanceListQuery,
  MoveInstanceDto,
} from './instance.dto.js';
import { InstancesService } from './instances.service.js';

@ApiTags('instances')
@ApiBearerAuth()
@Controller('instances')
export class InstancesController {
  constructor(private readonly instances: InstancesService) {}

  @Post()
  create(@Body() dto: CreateInstanceDto) {
    return this.instances.create(dto);
  }

  @Post('bulk')
  createBulk(@Body() dto: BulkCreateInstancesDto) {
    return this.instances.createBulk(dto.instances);
  }

  @Get()
  list(@Query() q: InstanceListQuery) {
    return this.instances.list(q);
  }

  @Get(':idOrName')
  get(@Param('idOrName') idOrName: string) {
    return this.instances.get(idOrName);
  }

  @Patch(':idOrName')
  move(@Param('idOrName') idOrName: string, @Body() dto: MoveInstanceDto) {
    return this.instances.move(idOrName, dto.host);
  }

  @Delete(':idOrName')
  @HttpCode(200)
  delete(@Param('idOrName') idOrName: string) {
    return this.instances.delete(idOrName);
  }
}
