import {
  broadcast,
  firstUsable,
  intToIp,
  ipToInt,
  isBlockBased,
  parseCidr,
  type Encapsulation,
  type NetworkModel,
  type Routing,
  type Transport,
} from '../../../../libs/model/src/index.js';
import type { FieldError } from '../common/errors.js';
import type { CreateNetworkDto } from './network.dto.js';

export const DEFAULT_MTU = 1500;
export const DEFAULT_BLOCK_PREFIX_LEN = 26;

/** A network's parameters after model rules and defaults; pool ids may still be missing. */
export interface NetworkParameters {
  model: NetworkModel;
  cidr: string;
  gateway: string;
  mtu: number;
  encapsulation: Encapsulation | null;
  routing: Routing | null;
  transport: Transport | null;
  blockPrefixLen: number | null;
  /** Needs an id from this pool; `explicit` when the request named one. */
  vlan: { explicit: number | undefined } | null;
  vni: { explicit: number | undefined } | null;
}

type Param =
  'vlanId' | 'vni' | 'encapsulation' | 'routing' | 'blockPrefixLen' | 'transport' | 'gateway';

/**
 * Applies the per-model rules of SPEC §1 to a shape-valid request: which parameters belong
 * to the model, their defaults, and the address rules. Returns every problem at once.
 */
export function networkParameters(dto: CreateNetworkDto): NetworkParameters | FieldError[] {
  const errors: FieldError[] = [];
  const bad = (field: string, message: string) => errors.push({ field, errors: [message] });
  const model = dto.model;
  const encapsulation: Encapsulation | null =
    model === 'overlay' ? (dto.encapsulation ?? 'vxlan') : null;
  const routing: Routing | null = model === 'routed' ? (dto.routing ?? 'static') : null;
  const transport: Transport | null = model === 'fabric' ? (dto.transport ?? 'vxlan') : null;
  const blockBased = isBlockBased({ model, encapsulation });
  const usesVlan = model === 'vlan' || transport === 'vlan';
  const usesVni = encapsulation === 'vxlan' || transport === 'vxlan';

  const allowed: Record<Param, boolean> = {
    vlanId: usesVlan,
    vni: usesVni,
    encapsulation: model === 'overlay',
    routing: model === 'routed',
    transport: model === 'fabric',
    blockPrefixLen: blockBased,
    gateway: !blockBased,
  };
  for (const [field, ok] of Object.entries(allowed) as [Param, boolean][]) {
    if (!ok && dto[field] !== undefined) {
      const why =
        field === 'gateway'
          ? 'block-based networks have a gateway per host block'
          : `it does not apply to model ${model}${model === 'overlay' || model === 'fabric' ? ` with ${encapsulation ?? transport}` : ''}`;
      bad(field, `${field} is not allowed here: ${why}`);
    }
  }

  const cidr = parseCidr(dto.cidr)!;
  const blockPrefixLen = blockBased
    ? (dto.blockPrefixLen ?? Math.max(DEFAULT_BLOCK_PREFIX_LEN, cidr.prefix))
    : null;
  if (blockPrefixLen !== null && blockPrefixLen < cidr.prefix) {
    bad(
      'blockPrefixLen',
      `blockPrefixLen must be at least the CIDR's prefix length (${cidr.prefix})`,
    );
  }

  let gateway = intToIp(firstUsable(cidr));
  if (dto.gateway !== undefined && allowed.gateway) {
    const g = ipToInt(dto.gateway);
    if (g <= cidr.base || g >= broadcast(cidr))
      bad('gateway', `gateway must be a usable address inside ${dto.cidr}`);
    else gateway = dto.gateway;
  }
  if (errors.length > 0) return errors;
  return {
    model,
    cidr: dto.cidr,
    gateway,
    mtu: dto.mtu ?? DEFAULT_MTU,
    encapsulation,
    routing,
    transport,
    blockPrefixLen,
    vlan: usesVlan ? { explicit: dto.vlanId } : null,
    vni: usesVni ? { explicit: dto.vni } : null,
  };
}
