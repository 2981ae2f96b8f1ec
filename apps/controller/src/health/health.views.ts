/** The body of GET /health, for the OpenAPI document. */
import { ApiProperty } from '@nestjs/swagger';

export class Health {
  @ApiProperty({ enum: ['ok'] })
  status!: 'ok';

  @ApiProperty({ enum: ['up'] })
  database!: 'up';

  @ApiProperty({ type: 'integer', minimum: 0, description: 'the latest committed revision' })
  revision!: number;
}
