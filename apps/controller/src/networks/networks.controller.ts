import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';
import { NETWORK_MODELS } from '../../../../libs/model/src/index.js';
import { PageQuery } from '../common/pagination.js';
import { CreateNetworkDto } from './network.dto.js';
import { NetworksService } from './networks.service.js';

class NetworkListQuery extends PageQuery {
  @ApiPropertyOptional({ enum: NETWORK_MODELS })
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
  create(@Body() dto: CreateNetworkDto) {
    return this.networks.create(dto);
  }

  @Get()
  list(@Query() q: NetworkListQuery) {
    return this.networks.list(q);
  }

  @Get(':idOrName')
  get(@Param('idOrName') idOrName: string) {
    return this.networks.get(idOrName);
  }

  @Delete(':idOrName')
  @HttpCode(200)
  delete(@Param('idOrName') idOrName: string) {
    return this.networks.delete(idOrName);
  }
}
