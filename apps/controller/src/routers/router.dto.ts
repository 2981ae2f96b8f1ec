import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { NAME_MESSAGE, NAME_PATTERN } from '../common/validators.js';

/** An optional list of networks named by id or name. */
function NetworkRefs(description: string) {
  return applyDecorators(
    ApiPropertyOptional({ description, type: [String] }),
    IsOptional(),
    IsArray(),
    ArrayMaxSize(256),
    IsString({ each: true }),
    MaxLength(63, { each: true }),
  );
}

export class CreateRouterDto {
  @ApiProperty({ example: 'r1' })
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
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
