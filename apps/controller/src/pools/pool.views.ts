/** Response bodies of /pools (PoolUsage in pools.service.ts), for the OpenAPI document. */
import { ApiProperty } from '@nestjs/swagger';

export class PoolUsage {
  @ApiProperty({ type: 'integer', description: 'first id of the configured range' })
  start!: number;

  @ApiProperty({ type: 'integer', description: 'last id of the configured range' })
  end!: number;

  @ApiProperty({ type: 'integer', minimum: 1, description: 'ids in the range' })
  size!: number;

  @ApiProperty({ type: 'integer', minimum: 0, description: 'ids of the range in use' })
  used!: number;

  @ApiProperty({ type: 'integer', minimum: 0, description: 'ids of the range still free' })
  free!: number;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: 'ids in use outside the range (given explicitly, or left by a range change)',
  })
  usedOutsideRange!: number;
}

export class Pools {
  @ApiProperty({ type: PoolUsage, description: 'VLAN ids (default range 100-4094)' })
  vlan!: PoolUsage;

  @ApiProperty({ type: PoolUsage, description: 'VNIs (default range 10000-16777215)' })
  vni!: PoolUsage;
}
