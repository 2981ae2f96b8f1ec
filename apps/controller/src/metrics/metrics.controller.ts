import { Controller, Get, Header } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiOp, ApiRead } from '../common/openapi.js';
import { MetricsService } from './metrics.service.js';

@ApiTags('metrics')
@ApiBearerAuth()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiOp(
    'getMetrics',
    'Prometheus metrics',
    'The Prometheus text exposition format (0.0.4). Needs a bearer token: the admin or the ' +
      'viewer token (a Prometheus scrape job sets it with `authorization: { credentials: ... }`).',
  )
  @ApiResponse({
    status: 200,
    description: 'The metrics.',
    content: {
      'text/plain': {
        schema: { type: 'string', example: '# HELP lattice_objects Stored objects by kind\n' },
      },
    },
  })
  @ApiRead()
  scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
