import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsOptional, IsString, MaxLength } from 'class-validator';
import { NAME_SCHEMA, REF_SCHEMA } from '../common/openapi.js';
import { IsObjectName, NAME_DESCRIPTION } from '../common/validators.js';

/** An optional list of networks named by id or name. */
function NetworkRefs(description: string) {
  return applyDecorators(
    ApiPropertyOptional({
      description,
      type: 'array',
      maxItems: 256,
      items: { ...REF_SCHEMA, description: 'a network id or name' },
    }),
    IsOptional(),
    IsArray(),
    ArrayMaxSize(256),
    IsString({ each: true }),
    MaxLength(63, { each: true }),
  );
}

export class CreateRouterDto {
  @ApiProperty({ ...NAME_SCHEMA, example: 'r1', description: NAME_DESCRIPTION })
  @IsObjectName()
  name!: string;

  @NetworkRefs('networks to attach, by id or name')
  networks?: string[];
}

/** Either `networks` (the whole new set) or `attach`/`detach` (changes to it). */
export class UpdateRouterDto {
  @NetworkRefs('replace the attached networks with this set')
  networks?: string[];

  @NetworkRefs('networks to attach')
  attach?: string[];

  @NetworkRefs('networks to detach')
  detach?: string[];
}
