import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiOp, ApiRead } from '../common/openapi.js';
import { Pools } from './pool.views.js';
import { PoolsService } from './pools.service.js';

@ApiTags('pools')
@ApiBearerAuth()
@Controller('pools')
export class PoolsController {
  constructor(private readonly pools: PoolsService) {}

  @Get()
  @ApiOp(
    'getPools',
    'Get pool usage',
    'The VLAN and VNI pools: their configured ranges, and how many ids are used and free.',
  )
  @ApiResponse({ status: 200, description: 'Both pools.', type: Pools })
  @ApiRead()
  usage() {
    return this.pools.usage();
  }
}
