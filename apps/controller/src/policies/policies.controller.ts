import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiExtraModels,
  ApiQuery,
  ApiResponse,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { InvalidInput } from '../common/errors.js';
import { ApiIdOrName, ApiMutation, ApiOp, ApiPage, ApiRead, Deleted } from '../common/openapi.js';
import { PageQuery } from '../common/pagination.js';
import { CreatePolicyDto, UpdatePolicyDto } from './policy.dto.js';
import { ChangedPolicy, Policy, PolicyPreview } from './policy.views.js';
import { PoliciesService } from './policies.service.js';

const DRY_RUN = {
  name: 'dryRun',
  required: false,
  enum: ['true', 'false'],
  description:
    'true: validate and answer what the change would do (selection, flows denied and allowed, ' +
    'hosts changed) without committing anything',
} as const;

const PREVIEW_OR = (Model: typeof ChangedPolicy | typeof Deleted, description: string) => ({
  status: 200,
  description,
  schema: { oneOf: [{ $ref: getSchemaPath(Model) }, { $ref: getSchemaPath(PolicyPreview) }] },
});

/**
 * `?dryRun`: 'true' or 'false' (absent: false). A dry run's answer carries no revision, so
 * `wait=applied` has nothing to wait for and answers at once.
 */
function dryRunOf(raw: unknown): boolean {
  if (raw === undefined || raw === 'false') return false;
  if (raw !== 'true') throw InvalidInput.field('dryRun', 'dryRun must be "true" or "false"');
  return true;
}

@ApiTags('policies')
@ApiBearerAuth()
@ApiExtraModels(ChangedPolicy, PolicyPreview, Deleted)
@Controller('policies')
export class PoliciesController {
  constructor(private readonly policies: PoliciesService) {}

  @Post()
  @ApiOp(
    'createPolicy',
    'Create a network policy',
    'Selects instances by labels (optionally in some networks) and lists the ingress and/or ' +
      'egress connections they may make, with Kubernetes NetworkPolicy semantics: an instance ' +
      'selected for a direction accepts only what some selecting policy allows; rules are ' +
      'stateful. `?dryRun=true` answers 200 with a preview and commits nothing.',
  )
  @ApiQuery(DRY_RUN)
  @ApiResponse({ status: 201, description: 'The policy.', type: ChangedPolicy })
  @ApiResponse({ status: 200, description: 'A dry run: the preview.', type: PolicyPreview })
  @ApiMutation({ notFound: 'No such network.', conflict: 'The name is taken.' })
  async create(
    @Body() dto: CreatePolicyDto,
    @Query('dryRun') dryRun: unknown,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    const dry = dryRunOf(dryRun);
    const out = await this.policies.create(dto as unknown as Record<string, unknown>, dry);
    if (dry) void res.status(200);
    return out;
  }

  @Get()
  @ApiOp('listPolicies', 'List network policies', 'Policies in name order.')
  @ApiPage(Policy, 'A page of policies.')
  @ApiRead({ query: true })
  list(@Query() q: PageQuery) {
    return this.policies.list(q);
  }

  @Get(':idOrName')
  @ApiOp('getPolicy', 'Get a network policy', 'One policy.')
  @ApiIdOrName('policy')
  @ApiResponse({ status: 200, description: 'The policy.', type: Policy })
  @ApiRead({ notFound: 'No such policy.' })
  get(@Param('idOrName') idOrName: string) {
    return this.policies.get(idOrName);
  }

  @Patch(':idOrName')
  @ApiOp(
    'updatePolicy',
    'Change a network policy',
    'Replaces the fields given (`ingress: null` / `egress: null` stops isolating that ' +
      'direction; one must remain). `?dryRun=true` answers the preview and commits nothing.',
  )
  @ApiIdOrName('policy')
  @ApiQuery(DRY_RUN)
  @ApiResponse(PREVIEW_OR(ChangedPolicy, 'The policy as changed, or (dry run) the preview.'))
  @ApiMutation({ notFound: 'No such policy or network.' })
  update(
    @Param('idOrName') idOrName: string,
    @Body() dto: UpdatePolicyDto,
    @Query('dryRun') dryRun: unknown,
  ) {
    return this.policies.update(
      idOrName,
      dto as unknown as Record<string, unknown>,
      dryRunOf(dryRun),
    );
  }

  @Delete(':idOrName')
  @HttpCode(200)
  @ApiOp(
    'deletePolicy',
    'Delete a network policy',
    'Deletes a policy: its instances stop being isolated by it. `?dryRun=true` answers the ' +
      'preview and commits nothing.',
  )
  @ApiIdOrName('policy')
  @ApiQuery(DRY_RUN)
  @ApiResponse(PREVIEW_OR(Deleted, 'The policy is deleted, or (dry run) the preview.'))
  @ApiMutation({ notFound: 'No such policy.' })
  delete(@Param('idOrName') idOrName: string, @Query('dryRun') dryRun: unknown) {
    return this.policies.delete(idOrName, dryRunOf(dryRun));
  }
}
