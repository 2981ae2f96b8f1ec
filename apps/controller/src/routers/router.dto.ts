import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { NAME_MESSAGE, NAME_PATTERN } from '../common/validators.js';

export class CreateRouterDto {
  @ApiProperty({ example: 'r1' })
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  name!: string;

  @ApiPropertyOptional({
    description: 'networks to attach, by id or name',
    example: ['blue', 'green'],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(256)
  @IsString({ each: true })
  @MaxLength(63, { each: true })
  networks?: string[];
}

/** Either `networks` (the whole new set) or `attach`/`detach` (changes to it). */
export class UpdateRouterDto {
  @ApiPropertyOptional({ description: 'replace the attached networks with this set' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(256)
  @IsString({ each: true })
  @MaxLength(63, { each: true })
  networks?: string[];

  @ApiPropertyOptional({ description: 'networks to attach' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(256)
  @IsString({ each: true })
  @MaxLength(63, { each: true })
  attach?: string[];

  @ApiPropertyOptional({ description: 'networks to detach' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(256)
  @IsString({ each: true })
  @MaxLength(63, { each: true })
  detach?: string[];
}
