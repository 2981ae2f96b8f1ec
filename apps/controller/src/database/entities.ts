import { Column, CreateDateColumn, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import type {
  Encapsulation,
  NetworkModel,
  Routing,
  Transport,
} from '../../../../libs/model/src/index.js';

/** PostgreSQL returns bigint as a string; revisions and ASNs fit a JS number. */
const bigintNumber = {
  to: (v: number | null | undefined) => v,
  from: (v: string | null) => (v === null ? null : Number(v)),
};

/** `inet` values come back as `a.b.c.d` for /32s and `a.b.c.d/n` otherwise. */
const inetHost = { to: (v: string) => v, from: (v: string) => v.replace(/\/32$/, '') };

export interface AgentError {
  key: string;
  message: string;
}

@Entity('hosts')
export class HostEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('text') name!: string;
  @Column({ type: 'inet', name: 'underlay_ip', transformer: inetHost }) underlayIp!: string;
  @Column('text') uplink!: string;
  @Column({ type: 'bigint', nullable: true, transformer: bigintNumber }) asn!: number | null;
  @Column('jsonb') labels!: Record<string, string>;
  @Column({ type: 'text', name: 'agent_token_hash', select: false }) agentTokenHash!: string;
  @Column({ type: 'boolean', name: 'agent_connected' }) agentConnected!: boolean;
  @Column({ type: 'timestamptz', name: 'agent_last_seen', nullable: true })
  agentLastSeen!: Date | null;
  @Column({ type: 'text', name: 'agent_version', nullable: true }) agentVersion!: string | null;
  @Column({ type: 'jsonb', name: 'agent_errors' }) agentErrors!: AgentError[];
  @Column({ type: 'jsonb', name: 'agent_drift' }) agentDrift!: AgentError[];
  @Column({ type: 'bigint', name: 'applied_revision', transformer: bigintNumber })
  appliedRevision!: number;
  @Column({ type: 'bigint', name: 'desired_revision', transformer: bigintNumber })
  desiredRevision!: number;
  @Column({ type: 'bigint', transformer: bigintNumber }) revision!: number;
  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' }) createdAt!: Date;
}

@Entity('networks')
export class NetworkEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('text') name!: string;
  @Column('text') model!: NetworkModel;
  @Column('cidr') cidr!: string;
  @Column({ type: 'inet', transformer: inetHost }) gateway!: string;
  @Column('integer') mtu!: number;
  @Column({ type: 'integer', name: 'vlan_id', nullable: true }) vlanId!: number | null;
  @Column({ type: 'integer', nullable: true }) vni!: number | null;
  @Column({ type: 'text', nullable: true }) encapsulation!: Encapsulation | null;
  @Column({ type: 'text', nullable: true }) routing!: Routing | null;
  @Column({ type: 'integer', name: 'block_prefix_len', nullable: true }) blockPrefixLen!:
    number | null;
  @Column({ type: 'text', nullable: true }) transport!: Transport | null;
  @Column({ type: 'boolean', name: 'nat_outgoing' }) natOutgoing!: boolean;
  /** Can meet other networks in a host's routing table: must not overlap them. */
  @Column('boolean') routable!: boolean;
  @Column({ type: 'bigint', transformer: bigintNumber }) revision!: number;
  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' }) createdAt!: Date;
}

@Entity('instances')
export class InstanceEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('text') name!: string;
  @Column({ type: 'uuid', name: 'network_id' }) networkId!: string;
  @Column({ type: 'uuid', name: 'host_id' }) hostId!: string;
  @Column({ type: 'inet', transformer: inetHost }) ip!: string;
  @Column('macaddr') mac!: string;
  @Column('jsonb') labels!: Record<string, string>;
  @Column({ type: 'bigint', transformer: bigintNumber }) revision!: number;
  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' }) createdAt!: Date;
}

@Entity('host_blocks')
export class HostBlockEntity {
  @PrimaryColumn('cidr') cidr!: string;
  @Column({ type: 'uuid', name: 'network_id' }) networkId!: string;
  @Column({ type: 'uuid', name: 'host_id' }) hostId!: string;
  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' }) createdAt!: Date;
}

@Entity('routers')
export class RouterEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('text') name!: string;
  @Column({ type: 'bigint', transformer: bigintNumber }) revision!: number;
  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' }) createdAt!: Date;
}

@Entity('policies')
export class PolicyEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('text') name!: string;
  @Column('jsonb') spec!: unknown;
  @Column({ type: 'bigint', transformer: bigintNumber }) revision!: number;
  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' }) createdAt!: Date;
  @Column({ type: 'timestamptz', name: 'updated_at' }) updatedAt!: Date;
}

@Entity('join_tokens')
export class JoinTokenEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('text') name!: string;
  @Column({ type: 'text', name: 'token_hash', select: false }) tokenHash!: string;
  @Column('text') description!: string;
  @Column('jsonb') labels!: Record<string, string>;
  @Column({ type: 'boolean', name: 'allow_rejoin' }) allowRejoin!: boolean;
  @Column({ type: 'integer', name: 'max_uses' }) maxUses!: number;
  @Column('integer') uses!: number;
  @Column({ type: 'timestamptz', name: 'expires_at' }) expiresAt!: Date;
  @Column({ type: 'timestamptz', name: 'revoked_at', nullable: true }) revokedAt!: Date | null;
  @Column({ type: 'timestamptz', name: 'last_used_at', nullable: true }) lastUsedAt!: Date | null;
  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' }) createdAt!: Date;
}

@Entity('router_networks')
export class RouterNetworkEntity {
  @PrimaryColumn({ type: 'uuid', name: 'router_id' }) routerId!: string;
  @PrimaryColumn({ type: 'uuid', name: 'network_id' }) networkId!: string;
}

@Entity('pools')
export class PoolEntity {
  @PrimaryColumn('text') name!: 'vlan' | 'vni';
  @Column({ type: 'integer', name: 'range_start' }) rangeStart!: number;
  @Column({ type: 'integer', name: 'range_end' }) rangeEnd!: number;
}

@Entity('floating_ip_pools')
export class FloatingIpPoolEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('text') name!: string;
  @Column('cidr') cidr!: string;
  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' }) createdAt!: Date;
}

@Entity('floating_ips')
export class FloatingIpEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column({ type: 'inet', transformer: inetHost }) address!: string;
  @Column({ type: 'uuid', name: 'pool_id' }) poolId!: string;
  @Column({ type: 'uuid', name: 'instance_id', nullable: true }) instanceId!: string | null;
  @Column({ type: 'bigint', transformer: bigintNumber }) revision!: number;
  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' }) createdAt!: Date;
}

@Entity('revisions')
export class RevisionEntity {
  @PrimaryColumn({ type: 'bigint', transformer: bigintNumber }) revision!: number;
  @CreateDateColumn({ type: 'timestamptz', name: 'committed_at' }) committedAt!: Date;
  @Column({ type: 'uuid', array: true }) hosts!: string[];
  @Column('jsonb') changes!: unknown[];
}

export const ENTITIES = [
  HostEntity,
  NetworkEntity,
  InstanceEntity,
  HostBlockEntity,
  RouterEntity,
  RouterNetworkEntity,
  PolicyEntity,
  JoinTokenEntity,
  PoolEntity,
  FloatingIpPoolEntity,
  FloatingIpEntity,
  RevisionEntity,
];
