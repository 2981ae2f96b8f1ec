/** Response bodies of /instances (InstanceView in instances.service.ts), for the OpenAPI document. */
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { APPLIED_IN_MS } from '../common/openapi.js';

export class Instance {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: 'web1' })
  name!: string;

  @ApiProperty({ format: 'uuid' })
  networkId!: string;

  @ApiProperty({ description: 'the network name', example: 'blue' })
  network!: string;

  @ApiProperty({ format: 'uuid' })
  hostId!: string;

  @ApiProperty({ description: 'the host name', example: 'h1' })
  host!: string;

  @ApiProperty({ format: 'ipv4', example: '10.10.0.2' })
  ip!: string;

  @ApiProperty({
    description: 'lower case, colon-separated',
    pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$',
    example: '02:5e:10:00:00:02',
  })
  mac!: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: "the instance's labels ({} when none)",
    example: { app: 'web', 'example.com/tier': 'frontend' },
  })
  labels!: Record<string, string>;

  @ApiProperty({
    enum: ['pending', 'active'],
    description: "`active` once the host's agent has applied the instance's revision",
  })
  state!: string;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description:
      'the revision of the last change of the instance; in the answer to a change, the revision of that change',
  })
  revision!: number;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
}

/** The answer to POST /instances and PATCH /instances/{idOrName}. */
export class ChangedInstance extends Instance {
  @ApiPropertyOptional(APPLIED_IN_MS)
  appliedInMs?: number;
}

/** The answer to POST /instances/bulk. */
export class CreatedInstances {
  @ApiProperty({ type: [Instance], description: 'the instances created, in name order' })
  items!: Instance[];

  @ApiProperty({ type: 'integer', minimum: 1, description: 'the one revision of them all' })
  revision!: number;

  @ApiPropertyOptional(APPLIED_IN_MS)
  appliedInMs?: number;
}
