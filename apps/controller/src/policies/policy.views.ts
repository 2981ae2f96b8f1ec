/**
 * Bodies of /policies for the OpenAPI document: the request shapes (validated in full by
 * policy-body.ts) and the response views (policies.service.ts).
 */
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { POLICY_PROTOCOLS, SELECTOR_OPERATORS } from '../../../../libs/model/src/index.js';
import { APPLIED_IN_MS, LABELS_SCHEMA, REF_SCHEMA } from '../common/openapi.js';
import { MAX_EXPRESSIONS, MAX_PEERS, MAX_PORTS, MAX_RULES, MAX_VALUES } from './policy-body.js';

const NETWORK_IDS = {
  type: 'array',
  items: { type: 'string', format: 'uuid' },
  description: 'network ids (an id whose network was deleted matches nothing)',
} as const;
const PORT_NUMBER = { type: 'integer', minimum: 1, maximum: 65535, nullable: true } as const;

export class SelectorExpression {
  @ApiProperty({ example: 'app' })
  key!: string;

  @ApiProperty({ enum: SELECTOR_OPERATORS })
  operator!: string;

  @ApiProperty({
    type: [String],
    maxItems: MAX_VALUES,
    description: 'at least one for In/NotIn, none for Exists/DoesNotExist',
  })
  values!: string[];
}

export class LabelSelector {
  @ApiProperty({ ...LABELS_SCHEMA, description: 'labels an instance must carry, all of them' })
  matchLabels!: Record<string, string>;

  @ApiProperty({ type: [SelectorExpression], maxItems: MAX_EXPRESSIONS })
  matchExpressions!: SelectorExpression[];
}

export class PolicyPort {
  @ApiProperty({ enum: POLICY_PROTOCOLS })
  protocol!: string;

  @ApiProperty({
    ...PORT_NUMBER,
    description: 'tcp/udp: the (first) destination port; null: every port',
  })
  port!: number | null;

  @ApiProperty({
    ...PORT_NUMBER,
    description: 'tcp/udp: the last port of a range; null: only `port`',
  })
  endPort!: number | null;
}

export class PolicyPeer {
  @ApiPropertyOptional({ type: LabelSelector, description: 'instances matching this selector…' })
  selector?: LabelSelector;

  @ApiPropertyOptional({ ...NETWORK_IDS, description: '…in these networks (empty: any network)' })
  networkIds?: string[];

  @ApiPropertyOptional({ type: [String], description: 'names of `networkIds` that exist' })
  networks?: string[];

  @ApiPropertyOptional({ example: '192.0.2.0/24', description: 'or: addresses in this CIDR…' })
  cidr?: string;

  @ApiPropertyOptional({ type: [String], description: '…except those in these CIDRs' })
  except?: string[];
}

export class PolicyRule {
  @ApiProperty({ type: [PolicyPeer], description: 'empty: any address' })
  peers!: PolicyPeer[];

  @ApiProperty({ type: [PolicyPort], description: 'empty: any protocol and port' })
  ports!: PolicyPort[];
}

export class Policy {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: 'web-from-db' })
  name!: string;

  @ApiProperty({ type: LabelSelector })
  selector!: LabelSelector;

  @ApiProperty({
    ...NETWORK_IDS,
    description: 'the selection is limited to these networks (empty: all)',
  })
  networkIds!: string[];

  @ApiProperty({ type: [String], description: 'names of `networkIds` that exist' })
  networks!: string[];

  @ApiProperty({
    type: [PolicyRule],
    nullable: true,
    description: 'null: the policy does not isolate ingress; []: selected instances accept nothing',
  })
  ingress!: PolicyRule[] | null;

  @ApiProperty({
    type: [PolicyRule],
    nullable: true,
    description: 'null: the policy does not isolate egress; []: selected instances send nothing',
  })
  egress!: PolicyRule[] | null;

  @ApiProperty({ type: 'integer', minimum: 0, description: 'the revision of the last change' })
  revision!: number;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;

  @ApiProperty({ format: 'date-time' })
  updatedAt!: string;
}

export class ChangedPolicy extends Policy {
  @ApiPropertyOptional(APPLIED_IN_MS)
  appliedInMs?: number;
}

export class ObjectRef {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty()
  name!: string;
}

export class FlowPorts {
  @ApiProperty({
    enum: ['tcp', 'udp', 'icmp', 'other', 'any'],
    description: '`other`: protocols but tcp, udp and icmp',
  })
  protocol!: string;

  @ApiProperty({ type: 'integer', minimum: 0, maximum: 65535, nullable: true })
  port!: number | null;

  @ApiProperty({ type: 'integer', minimum: 0, maximum: 65535, nullable: true })
  endPort!: number | null;
}

export class FlowChange {
  @ApiProperty({ type: ObjectRef })
  from!: ObjectRef;

  @ApiProperty({ type: ObjectRef })
  to!: ObjectRef;

  @ApiProperty({ type: [FlowPorts], description: 'the protocols and ports whose verdict changes' })
  ports!: FlowPorts[];
}

export class SelectionChange {
  @ApiProperty({ type: [ObjectRef], description: 'instances the policy would newly select' })
  added!: ObjectRef[];

  @ApiProperty({ type: [ObjectRef], description: 'instances it would no longer select' })
  removed!: ObjectRef[];
}

/** The answer to `?dryRun=true`: nothing was committed. */
export class PolicyPreview {
  @ApiProperty({ type: 'boolean', enum: [true] })
  dryRun!: true;

  @ApiProperty({ type: Policy, description: 'the policy as it would be (for a delete: as it is)' })
  policy!: Policy;

  @ApiProperty({ type: SelectionChange })
  selected!: SelectionChange;

  @ApiProperty({
    type: [FlowChange],
    description: 'new connections allowed now that would be denied',
  })
  denied!: FlowChange[];

  @ApiProperty({
    type: [FlowChange],
    description: 'new connections denied now that would be allowed',
  })
  allowed!: FlowChange[];

  @ApiProperty({ type: [ObjectRef], description: 'hosts whose desired state would change' })
  hosts!: ObjectRef[];

  @ApiProperty({ type: 'boolean', description: 'denied/allowed were cut at 1,000 pairs each' })
  truncated!: boolean;
}

// ---- request bodies --------------------------------------------------------------------

export class LabelSelectorBody {
  @ApiPropertyOptional({
    ...LABELS_SCHEMA,
    description: 'labels an instance must carry, all of them',
  })
  matchLabels?: Record<string, string>;

  @ApiPropertyOptional({ type: [SelectorExpression], maxItems: MAX_EXPRESSIONS })
  matchExpressions?: SelectorExpression[];
}

export class PolicyPeerBody {
  @ApiPropertyOptional({
    type: LabelSelectorBody,
    description: 'instances matching this selector (give selector or cidr)',
  })
  selector?: LabelSelector;

  @ApiPropertyOptional({
    type: 'array',
    items: REF_SCHEMA,
    description: 'limit the selector to these networks (ids or names)',
  })
  networks?: string[];

  @ApiPropertyOptional({
    example: '192.0.2.0/24',
    description: 'or: addresses in this canonical CIDR',
  })
  cidr?: string;

  @ApiPropertyOptional({
    type: [String],
    maxItems: MAX_PEERS,
    description: 'CIDRs inside `cidr` to leave out',
  })
  except?: string[];
}

export class PolicyPortBody {
  @ApiProperty({ enum: POLICY_PROTOCOLS })
  protocol!: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 65535, description: 'tcp/udp only' })
  port?: number;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 65535,
    description: 'tcp/udp, with port: the last port of a range',
  })
  endPort?: number;
}

export class PolicyRuleBody {
  @ApiPropertyOptional({
    type: [PolicyPeerBody],
    maxItems: MAX_PEERS,
    description: 'absent or empty: any address',
  })
  peers?: PolicyPeerBody[];

  @ApiPropertyOptional({
    type: [PolicyPortBody],
    maxItems: MAX_PORTS,
    description: 'absent or empty: any protocol and port',
  })
  ports?: PolicyPortBody[];
}

export const RULES_SCHEMA: { type: [typeof PolicyRuleBody]; maxItems: number } = {
  type: [PolicyRuleBody],
  maxItems: MAX_RULES,
};
