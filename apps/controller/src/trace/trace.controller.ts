import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiOp, ApiRead } from '../common/openapi.js';
import { TraceQueryDto } from './trace.dto.js';
import { TraceService } from './trace.service.js';
import { Trace } from './trace.views.js';

@ApiTags('trace')
@ApiBearerAuth()
@Controller('trace')
export class TraceController {
  constructor(private readonly traces: TraceService) {}

  @Get()
  @ApiOp(
    'traceFlow',
    'Trace a packet',
    'How a packet from an instance reaches another instance or an IPv4 address, or why not, ' +
      'computed from the desired state at the latest revision (no packet is sent): hop by ' +
      'hop, each naming the resource keys it used, ending in `delivered` or `dropped` with ' +
      'the rule or the missing entry. The reply is traced back too.',
  )
  @ApiResponse({ status: 200, description: 'The trace.', type: Trace })
  @ApiRead({ query: true, notFound: 'No such instance (`from` or `to`).' })
  get(@Query() q: TraceQueryDto) {
    return this.traces.trace(q);
  }
}
