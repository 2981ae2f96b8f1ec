import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsArray, IsObject, IsOptional } from 'class-validator';
import { NAME_SCHEMA, REF_SCHEMA } from '../common/openapi.js';
import { IsObjectName, NAME_DESCRIPTION } from '../common/validators.js';
import { LabelSelectorBody, RULES_SCHEMA } from './policy.views.js';

/** The top-level shape; policy-body.ts validates what is inside, naming each field. */
export class CreatePolicyDto {
  @ApiProperty({ ...NAME_SCHEMA, example: 'web-from-db', description: NAME_DESCRIPTION })
  @IsObjectName()
  name!: string;

  @ApiProperty({
    type: LabelSelectorBody,
    description: 'the instances it applies to ({} selects all)',
  })
  @IsObject()
  selector!: Record<string, unknown>;

  @ApiPropertyOptional({
    type: 'array',
    items: REF_SCHEMA,
    description: 'limit the selection to these networks (ids or names)',
  })
  @IsOptional()
  @IsArray()
  networks?: unknown[];

  @ApiPropertyOptional({ ...RULES_SCHEMA, description: 'ingress allow rules ([] allows nothing)' })
  @IsOptional()
  @IsArray()
  ingress?: unknown[];

  @ApiPropertyOptional({ ...RULES_SCHEMA, description: 'egress allow rules ([] allows nothing)' })
  @IsOptional()
  @IsArray()
  egress?: unknown[];
}

export class UpdatePolicyDto {
  @ApiPropertyOptional({ type: LabelSelectorBody })
  @IsOptional()
  @IsObject()
  selector?: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'array', items: REF_SCHEMA })
  @IsOptional()
  @IsArray()
  networks?: unknown[];

  @ApiPropertyOptional({
    ...RULES_SCHEMA,
    nullable: true,
    description: 'null: stop isolating ingress',
  })
  @IsOptional()
  @IsArray()
  ingress?: unknown[] | null;

  @ApiPropertyOptional({
    ...RULES_SCHEMA,
    nullable: true,
    description: 'null: stop isolating egress',
  })
  @IsOptional()
  @IsArray()
  egress?: unknown[] | null;
}
