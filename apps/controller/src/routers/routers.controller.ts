import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { PageQuery } from '../common/pagination.js';
import { CreateRouterDto, UpdateRouterDto } from './router.dto.js';
import { RoutersService } from './routers.service.js';

@ApiTags('routers')
@ApiBearerAuth()
@Controller('routers')
export class RoutersController {
  constructor(private readonly routers: RoutersService) {}

  @Post()
  create(@Body() dto: CreateRouterDto) {
    return this.routers.create(dto.name, dto.networks);
  }

  @Get()
  list(@Query() q: PageQuery) {
    return this.routers.list(q);
  }

  @Get(':idOrName')
  get(@Param('idOrName') idOrName: string) {
    return this.routers.get(idOrName);
  }

  @Patch(':idOrName')
  update(@Param('idOrName') idOrName: string, @Body() dto: UpdateRouterDto) {
    return this.routers.update(idOrName, dto);
  }

  @Delete(':idOrName')
  @HttpCode(200)
  delete(@Param('idOrName') idOrName: string) {
    return this.routers.delete(idOrName);
  }
}
