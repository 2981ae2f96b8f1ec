/** The body of GET /trace (trace.service.ts), for the OpenAPI document. */
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TRACE_PROTOS } from './trace.dto.js';

export class TraceHop {
  @ApiProperty({
    description:
      'what happened: source, gateway, route, bgp, filter, neighbour, bridge, fdb, uplink, ' +
      'vxlan, tunnel, underlay, dnat, snat, conntrack, external, deliver, drop (prefixed `reply ` ' +
      'on the way back)',
    example: 'route',
  })
  step!: string;

  @ApiPropertyOptional({
    description: 'the host whose desired state the hop reads (name)',
    example: 'h1',
  })
  host?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'that host’s id' })
  hostId?: string;

  @ApiProperty({ description: 'what the data plane is told to do, for a person' })
  detail!: string;

  @ApiProperty({
    type: [String],
    description:
      "keys of the resources used, as in that host's `GET /hosts/{idOrName}/desired-state`",
    example: ['sysctl:net.ipv4.ip_forward', 'route:10.244.0.64/26'],
  })
  resources!: string[];
}

export class Trace {
  @ApiProperty({ description: 'the source instance (name)', example: 'web1' })
  from!: string;

  @ApiProperty({ description: 'the destination instance (name) or address', example: 'db1' })
  to!: string;

  @ApiProperty({ enum: TRACE_PROTOS })
  proto!: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 65535 })
  port?: number;

  @ApiProperty({
    enum: ['delivered', 'dropped', 'egress'],
    description: 'egress: the packet left Lattice through its host’s uplink, source-translated',
  })
  verdict!: string;

  @ApiPropertyOptional({ description: 'when dropped: the rule or the missing entry' })
  reason?: string;

  @ApiProperty({ type: [TraceHop], description: 'in order; a drop ends with a `drop` hop' })
  hops!: TraceHop[];

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: 'the revision whose desired state was traced',
  })
  revision!: number;
}
