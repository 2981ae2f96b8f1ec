import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsOptional,
  IsString,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import {
  IsIpv4Address,
  IsLabelSelector,
  IsUnicastMac,
  IsObjectName,
  NAME_DESCRIPTION,
} from '../common/validators.js';
import {
  IPV4_PATTERN,
  MAC_PATTERN,
  NAME_SCHEMA,
  OptionalLabels,
  REF_SCHEMA,
} from '../common/openapi.js';
import { PageQuery } from '../common/pagination.js';

export const MAX_BULK = 1000;

export class CreateInstanceDto {
  @ApiProperty({ ...NAME_SCHEMA, example: 'web1', description: NAME_DESCRIPTION })
  @IsObjectName()
  name!: string;

  @ApiProperty({ ...REF_SCHEMA, description: 'network id or name', example: 'blue' })
  @IsString()
  @MaxLength(63)
  network!: string;

  @ApiProperty({ ...REF_SCHEMA, description: 'host id or name', example: 'h1' })
  @IsString()
  @MaxLength(63)
  host!: string;

  @ApiPropertyOptional({
    description:
      "an address inside the network (block-based models: inside the host's block), not its " +
      'gateway, network or broadcast address (409 otherwise, or when in use); default: the ' +
      "lowest free address of the network (or of the host's block)",
    format: 'ipv4',
    pattern: IPV4_PATTERN,
  })
  @IsOptional()
  @IsIpv4Address()
  ip?: string;

  @ApiPropertyOptional({
    description:
      'a unicast MAC (least significant bit of the first octet clear, not all zeros), any case, ' +
      '`:` or `-` separated, answered in lower case with `:` (409 when in use); default: a ' +
      'random locally administered unicast MAC',
    pattern: MAC_PATTERN,
    example: '02:00:0a:0a:00:05',
  })
  @IsOptional()
  @IsUnicastMac()
  mac?: string;

  @OptionalLabels('default: none ({})')
  labels?: Record<string, string>;
}

export class BulkCreateInstancesDto {
  @ApiProperty({
    type: [CreateInstanceDto],
    minItems: 1,
    maxItems: MAX_BULK,
    description: 'the instances, with distinct names; all are created or none',
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_BULK, { message: `instances may hold at most ${MAX_BULK} items` })
  @ValidateNested({ each: true })
  @Type(() => CreateInstanceDto)
  instances!: CreateInstanceDto[];
}

/**
 * What may change on an instance: its host (a move, keeping IP and MAC) and/or its labels
 * (the whole set). At least one; both are one revision.
 */
export class UpdateInstanceDto {
  @ApiPropertyOptional({
    ...REF_SCHEMA,
    description: 'the new host, by id or name (a move, keeping IP and MAC)',
    example: 'h2',
  })
  @IsOptional()
  @IsString()
  @MaxLength(63)
  host?: string;

  @OptionalLabels('the new labels, replacing the whole set')
  labels?: Record<string, string>;
}

export class InstanceListQuery extends PageQuery {
  @ApiPropertyOptional({
    description: 'only instances of this network (id or name; 404 when unknown)',
  })
  @IsOptional()
  @IsString()
  network?: string;

  @ApiPropertyOptional({
    description: 'only instances on this host (id or name; 404 when unknown)',
  })
  @IsOptional()
  @IsString()
  host?: string;

  @ApiPropertyOptional({
    description:
      'only instances with this label: one equality selector `key=value` (an empty value ' +
      'matches the label set to ""); set-based selectors and several selectors are not supported',
    example: 'app=web',
  })
  @IsOptional()
  @IsLabelSelector()
  label?: string;
}
