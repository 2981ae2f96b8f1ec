import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { IsIntIn } from '../common/validators.js';
import { QueryInt } from '../common/pagination.js';
import { IPV4_PATTERN, REF_SCHEMA } from '../common/openapi.js';

export const TRACE_PROTOS = ['icmp', 'tcp', 'udp'] as const;

/** `GET /trace?from=&to=[&proto=&port=]`. */
export class TraceQueryDto {
  @ApiProperty({
    ...REF_SCHEMA,
    description: 'the source instance, by id or name',
    example: 'web1',
  })
  @IsString()
  @MaxLength(63)
  from!: string;

  @ApiProperty({
    type: 'string',
    maxLength: 63,
    description:
      'the destination: an instance by id or name, or an IPv4 address (a value with dots is ' +
      `read as an address and must match ${IPV4_PATTERN})`,
    example: 'db1',
  })
  @IsString()
  @MaxLength(63)
  to!: string;

  @ApiPropertyOptional({ enum: TRACE_PROTOS, default: 'icmp', description: 'the protocol' })
  @IsOptional()
  @IsIn(TRACE_PROTOS, { message: 'proto must be one of icmp, tcp, udp' })
  proto?: (typeof TRACE_PROTOS)[number];

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 65535,
    description: 'the destination port (tcp and udp only)',
  })
  @IsOptional()
  @QueryInt()
  @IsIntIn(1, 65535)
  port?: number;
}
