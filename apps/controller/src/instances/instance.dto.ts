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
  IsUnicastMac,
  IsObjectName,
  NAME_DESCRIPTION,
} from '../common/validators.js';
import { PageQuery } from '../common/pagination.js';

export const MAX_BULK = 1000;

export class CreateInstanceDto {
  @ApiProperty({ example: 'web1', description: NAME_DESCRIPTION })
  @IsObjectName()
  name!: string;

  @ApiProperty({ description: 'network id or name', example: 'blue' })
  @IsString()
  @MaxLength(63)
  network!: string;

  @ApiProperty({ description: 'host id or name', example: 'h1' })
  @IsString()
  @MaxLength(63)
  host!: string;

  @ApiPropertyOptional({
    description: 'default: the lowest free address of the network (or of the host block)',
  })
  @IsOptional()
  @IsIpv4Address()
  ip?: string;

  @ApiPropertyOptional({ description: 'default: a random locally administered unicast MAC' })
  @IsOptional()
  @IsUnicastMac()
  mac?: string;
}

export class BulkCreateInstancesDto {
  @ApiProperty({ type: [CreateInstanceDto], maxItems: MAX_BULK })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_BULK, { message: `instances may hold at most ${MAX_BULK} items` })
  @ValidateNested({ each: true })
  @Type(() => CreateInstanceDto)
  instances!: CreateInstanceDto[];
}

export class MoveInstanceDto {
  @ApiProperty({ description: 'the new host, by id or name' })
  @IsString()
  @MaxLength(63)
  host!: string;
}

export class InstanceListQuery extends PageQuery {
  @ApiPropertyOptional({ description: 'network id or name' })
  @IsOptional()
  @IsString()
  network?: string;

  @ApiPropertyOptional({ description: 'host id or name' })
  @IsOptional()
  @IsString()
  host?: string;
}
