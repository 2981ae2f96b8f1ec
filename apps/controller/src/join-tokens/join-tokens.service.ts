import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  UnauthorizedException,
} from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { hashToken, newToken } from '../auth/tokens.js';
import { AgentSessions } from '../agents/agent-sessions.service.js';
import { Conflict } from '../common/errors.js';
import { findByIdOrName } from '../common/lookup.js';
import { decodeCursor, PageQuery, toPage, type Page } from '../common/pagination.js';
import { CONFIG, type Config } from '../config/config.js';
import { HostEntity, JoinTokenEntity } from '../database/entities.js';
import type { CreateHostDto } from '../hosts/host.dto.js';
import { HostsService } from '../hosts/hosts.service.js';
import { RevisionLog } from '../revisions/revision-log.js';
import { JOIN_TTL, JOIN_USES, type CreateJoinTokenDto } from './join-token.dto.js';
import type { JoinToken, JoinTokenState } from './join-token.views.js';

export const BOOTSTRAP_JOIN_TOKEN = 'bootstrap';

const MISSING = 'missing join token: send it as "Authorization: Bearer <join token>"';

export function joinTokenState(e: JoinTokenEntity, now = new Date()): JoinTokenState {
  if (e.revokedAt) return 'revoked';
  if (e.expiresAt.getTime() <= now.getTime()) return 'expired';
  if (e.uses >= e.maxUses) return 'used-up';
  return 'active';
}

export function joinTokenView(e: JoinTokenEntity): JoinToken {
  return {
    id: e.id,
    name: e.name,
    description: e.description,
    labels: { ...e.labels },
    allowRejoin: e.allowRejoin,
    maxUses: e.maxUses,
    uses: e.uses,
    state: joinTokenState(e),
    expiresAt: e.expiresAt.toISOString(),
    revokedAt: e.revokedAt?.toISOString() ?? null,
    lastUsedAt: e.lastUsedAt?.toISOString() ?? null,
    createdAt: e.createdAt.toISOString(),
  };
}

/** 401 unless `e` is a join token an agent may use now, saying which rule refused it. */
function usable(e: JoinTokenEntity | null): JoinTokenEntity {
  if (!e) throw new UnauthorizedException('not a join token of this controller');
  const state = joinTokenState(e);
  if (state === 'revoked')
    throw new UnauthorizedException(`join token "${e.name}" was revoked: ask for a new one`);
  if (state === 'expired')
    throw new UnauthorizedException(
      `join token "${e.name}" expired at ${e.expiresAt.toISOString()}: ask for a new one`,
    );
  if (state === 'used-up')
    throw new UnauthorizedException(
      `join token "${e.name}" has been used ${e.uses} of ${e.maxUses} times: ask for a new one`,
    );
  return e;
}

/**
 * Join tokens (`/join-tokens`) and the join itself (`POST /join`): an agent presents a join
 * token and its host's name and underlay address, and receives a host of its own with an
 * agent token (shown once), which it keeps. Only hashes of both tokens are stored.
 */
@Injectable()
export class JoinTokensService implements OnApplicationBootstrap {
  private readonly log = new Logger('JoinTokens');

  constructor(
    private readonly ds: DataSource,
    private readonly revisions: RevisionLog,
    private readonly hosts: HostsService,
    private readonly agents: AgentSessions,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  /**
   * `LATTICE_JOIN_TOKEN`: (re)installed at every start as the token named `bootstrap`, with
   * its uses counted from this start (every replica that starts does the same).
   */
  async onApplicationBootstrap(): Promise<void> {
    const b = this.config.bootstrapJoin;
    if (!b) return;
    await this.ds.query(
      `INSERT INTO join_tokens (name, token_hash, description, allow_rejoin, max_uses, uses, expires_at)
       VALUES ($1, $2, 'LATTICE_JOIN_TOKEN, installed at start', $3, $4, 0,
               now() + $5 * interval '1 second')
       ON CONFLICT (name) DO UPDATE SET token_hash = EXCLUDED.token_hash,
         description = EXCLUDED.description, allow_rejoin = EXCLUDED.allow_rejoin,
         max_uses = EXCLUDED.max_uses, uses = 0, expires_at = EXCLUDED.expires_at,
         revoked_at = NULL`,
      [BOOTSTRAP_JOIN_TOKEN, hashToken(b.token), b.allowRejoin, b.maxUses, b.ttlSeconds],
    );
    this.log.log(
      `join token "${BOOTSTRAP_JOIN_TOKEN}" installed from LATTICE_JOIN_TOKEN: ${b.maxUses} joins within ${b.ttlSeconds} s` +
        (b.allowRejoin ? ', re-joins allowed' : ''),
    );
  }

  async create(dto: CreateJoinTokenDto) {
    const token = newToken('ljt');
    const row = await this.ds.manager.save(
      this.ds.manager.create(JoinTokenEntity, {
        name: dto.name ?? `join-${randomBytes(6).toString('hex').slice(0, 8)}`,
        tokenHash: hashToken(token),
        description: dto.description ?? '',
        labels: dto.labels ?? {},
        allowRejoin: dto.allowRejoin ?? false,
        maxUses: dto.maxUses ?? JOIN_USES.default,
        uses: 0,
        expiresAt: new Date(Date.now() + (dto.ttlSeconds ?? JOIN_TTL.default) * 1000),
        revokedAt: null,
        lastUsedAt: null,
      }),
    );
    return { ...joinTokenView(row), token };
  }

  async get(idOrName: string): Promise<JoinToken> {
    return joinTokenView(
      await findByIdOrName(this.ds.manager, JoinTokenEntity, 'join token', idOrName),
    );
  }

  async list(q: PageQuery): Promise<Page<JoinToken>> {
    const limit = q.limit ?? 100;
    const after = decodeCursor(q.cursor);
    const qb = this.ds.manager
      .createQueryBuilder(JoinTokenEntity, 't')
      .orderBy('t.name')
      .limit(limit + 1);
    if (after !== null) qb.where('t.name > :after', { after });
    return toPage(await qb.getMany(), limit, joinTokenView);
  }

  /** Revokes the token (kept, as `revoked`, so that an agent using it is told why). */
  async revoke(idOrName: string) {
    const row = await findByIdOrName(this.ds.manager, JoinTokenEntity, 'join token', idOrName);
    // an UPDATE through TypeORM answers [rows, count]
    const [[kept]] = await this.ds.query<[{ revoked_at: Date }[], number]>(
      `UPDATE join_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
       RETURNING revoked_at`,
      [row.id],
    );
    const after = { ...row, revokedAt: kept.revoked_at };
    return { ...joinTokenView(after), revoked: true as const };
  }

  /**
   * 401 unless `bearer` is a join token an agent may use now (a read, outside the write
   * path: a wrong token never waits behind writers). Answers its hash.
   */
  async check(bearer: string | undefined): Promise<string> {
    if (!bearer) throw new UnauthorizedException(MISSING);
    const tokenHash = hashToken(bearer);
    usable(await this.ds.manager.findOne(JoinTokenEntity, { where: { tokenHash } }));
    return tokenHash;
  }

  /**
   * Registers the agent's host (or, where allowed, takes over the host of that name) and
   * answers its new agent token, shown this once. A name already taken by a host whose
   * agent has connected is a 409 unless the join token allows re-joins; a host registered
   * by an admin that no agent has used yet is taken over.
   */
  async join(bearer: string | undefined, dto: CreateHostDto) {
    // JoinTokenGuard has checked the token already; it is checked again under its lock.
    if (!bearer) throw new UnauthorizedException(MISSING);
    const tokenHash = hashToken(bearer);
    const agentToken = newToken('lah');
    const { result, revision } = await this.revisions.mutate(async (tx) => {
      // Locked, so that concurrent joins (on any replica) count their uses exactly.
      const jt = usable(
        await tx.manager.findOne(JoinTokenEntity, {
          where: { tokenHash },
          lock: { mode: 'pessimistic_write' },
        }),
      );
      const given = Object.keys(jt.labels).length > 0 || dto.labels !== undefined;
      const body: CreateHostDto = {
        ...dto,
        labels: given ? { ...jt.labels, ...(dto.labels ?? {}) } : undefined,
      };
      const existing = await tx.manager.findOne(HostEntity, {
        where: { name: dto.name },
        lock: { mode: 'pessimistic_write' },
      });
      let host: HostEntity & { instanceCount: number };
      if (existing) {
        if (!jt.allowRejoin && existing.agentLastSeen !== null)
          throw new Conflict(
            `host "${dto.name}" is registered and its agent has connected: join with a token ` +
              `that allows re-joins, rotate the host's agent token, or delete the host first`,
            { object: 'host', field: 'name', value: dto.name },
          );
        host = await this.hosts.rejoin(tx, existing, body, agentToken);
      } else {
        host = { ...(await this.hosts.insert(tx, body, agentToken)), instanceCount: 0 };
      }
      await tx.manager.update(
        JoinTokenEntity,
        { id: jt.id },
        { uses: jt.uses + 1, lastUsedAt: new Date() },
      );
      return { host, rejoined: existing !== null, joinToken: jt.name };
    });
    // A re-join revoked the old agent token: an agent still connected with it goes.
    if (result.rejoined) await this.agents.verify([result.host.id]);
    return {
      ...this.hosts.view({ ...result.host, revision }, result.host.instanceCount),
      agentToken,
      revision,
      joinToken: result.joinToken,
      rejoined: result.rejoined,
    };
  }
}
