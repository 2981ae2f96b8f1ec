/** Response bodies of /floating-ip-pools and /floating-ips, for the OpenAPI document. */
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { APPLIED_IN_MS } from '../common/openapi.js';

export class FloatingIpPool {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: 'public' })
  name!: string;

  @ApiProperty({ example: '192.0.2.128/27' })
  cidr!: string;

  @ApiProperty({ type: 'integer', minimum: 1, description: 'addresses it can allocate' })
  size!: number;

  @ApiProperty({ type: 'integer', minimum: 0, description: 'floating IPs allocated from it' })
  used!: number;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
}

/** The answer to POST /floating-ip-pools. */
export class CreatedFloatingIpPool extends FloatingIpPool {
  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: 'the current revision (a pool changes no host: it commits no revision of its own)',
  })
  revision!: number;

  @ApiPropertyOptional(APPLIED_IN_MS)
  appliedInMs?: number;
}

export class FloatingIp {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: '192.0.2.130', format: 'ipv4' })
  address!: string;

  @ApiProperty({ format: 'uuid' })
  poolId!: string;

  @ApiProperty({ example: 'public', description: 'the name of its pool' })
  pool!: string;

  @ApiProperty({ type: String, format: 'uuid', nullable: true })
  instanceId!: string | null;

  @ApiProperty({ type: String, nullable: true, description: 'the bound instance, by name' })
  instance!: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'the host it lives on: the bound instance’s (it follows a move)',
  })
  host!: string | null;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description:
      'the revision of its last change; in the answer to a change, the revision of that change',
  })
  revision!: number;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
}

/** The answer to POST /floating-ips and PATCH /floating-ips/{idOrAddress}. */
export class ChangedFloatingIp extends FloatingIp {
  @ApiPropertyOptional(APPLIED_IN_MS)
  appliedInMs?: number;
}
