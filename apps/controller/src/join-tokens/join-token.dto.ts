import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString, MaxLength } from 'class-validator';
import { NAME_SCHEMA, OptionalLabels } from '../common/openapi.js';
import { IsIntIn, IsObjectName, NAME_DESCRIPTION } from '../common/validators.js';

export const JOIN_TTL = { min: 60, max: 366 * 86_400, default: 86_400 } as const;
export const JOIN_USES = { min: 1, max: 1_000_000, default: 1 } as const;

export class CreateJoinTokenDto {
  @ApiPropertyOptional({
    ...NAME_SCHEMA,
    example: 'rack-7',
    description: `${NAME_DESCRIPTION}; default: join-<8 random characters>`,
  })
  @IsOptional()
  @IsObjectName()
  name?: string;

  @ApiPropertyOptional({ maxLength: 200, description: 'for the people who read the list' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  description?: string;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: JOIN_TTL.min,
    maximum: JOIN_TTL.max,
    default: JOIN_TTL.default,
    description: 'seconds until the token expires',
  })
  @IsOptional()
  @IsIntIn(JOIN_TTL.min, JOIN_TTL.max)
  ttlSeconds?: number;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: JOIN_USES.min,
    maximum: JOIN_USES.max,
    default: JOIN_USES.default,
    description: 'how many joins (hosts registered or re-joined) the token allows',
  })
  @IsOptional()
  @IsIntIn(JOIN_USES.min, JOIN_USES.max)
  maxUses?: number;

  @ApiPropertyOptional({
    default: false,
    description:
      'a host may join again under a name that is taken: it gets a new agent token and the ' +
      'old one stops working (without it, only a host no agent ever connected as may be taken over)',
  })
  @IsOptional()
  @IsBoolean()
  allowRejoin?: boolean;

  @OptionalLabels('labels every host joining with this token gets (the agent may add its own)')
  labels?: Record<string, string>;
}
