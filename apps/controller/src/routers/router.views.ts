/** Response bodies of /routers (RouterView in routers.service.ts), for the OpenAPI document. */
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { APPLIED_IN_MS } from '../common/openapi.js';

export class Router {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: 'r1' })
  name!: string;

  @ApiProperty({
    type: 'array',
    items: { type: 'string', format: 'uuid' },
    description: 'ids of the attached networks, in the order of `networks`',
  })
  networkIds!: string[];

  @ApiProperty({ type: [String], description: 'names of the attached networks, in name order' })
  networks!: string[];

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description:
      'the revision of the last change of the router; in the answer to a change, the revision of that change',
  })
  revision!: number;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
}

/** The answer to POST /routers and PATCH /routers/{idOrName}. */
export class ChangedRouter extends Router {
  @ApiPropertyOptional(APPLIED_IN_MS)
  appliedInMs?: number;
}
