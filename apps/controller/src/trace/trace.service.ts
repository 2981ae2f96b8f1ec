import { Injectable, NotFoundException } from '@nestjs/common';
import { policyTraceHook, trace } from '../../../../libs/engine/src/index.js';
import { isIpv4, type Instance, type Topology } from '../../../../libs/model/src/index.js';
import { InvalidInput } from '../common/errors.js';
import { isUuid } from '../common/lookup.js';
import { DesiredStateService } from '../desired-state/desired-state.service.js';
import type { TraceQueryDto } from './trace.dto.js';
import type { Trace } from './trace.views.js';

/**
 * Packet trace (libs/engine/src/trace.ts) over the desired state at the latest revision:
 * instances are looked up in the engine's own topology, so the names resolved and the
 * state traced are of the same revision.
 */
@Injectable()
export class TraceService {
  constructor(private readonly desired: DesiredStateService) {}

  trace(q: TraceQueryDto): Promise<Trace> {
    const proto = q.proto ?? 'icmp';
    const toIp = q.to.includes('.');
    if (toIp && !isIpv4(q.to))
      throw InvalidInput.field('to', 'to must be an instance or an IPv4 address (a.b.c.d)');
    if (q.port !== undefined && proto === 'icmp') {
      throw InvalidInput.field('port', 'port applies to proto tcp and udp only');
    }
    return this.desired.read(
      ({ revision, stateOf, topology }) => {
        const t = topology();
        const from = find(t, q.from);
        const to = toIp ? { ip: q.to } : { instance: find(t, q.to).id };
        const r = trace(
          t,
          stateOf,
          { from: from.id, to, proto, port: q.port },
          { policy: policyTraceHook },
        );
        return {
          ...r,
          hops: r.hops.map(({ host, ...h }) => ({
            step: h.step,
            ...(host !== undefined ? { host: t.hosts.get(host)?.name ?? host, hostId: host } : {}),
            detail: h.detail,
            resources: h.resources,
          })),
          revision,
        };
      },
      { fresh: true },
    );
  }
}

function find(t: Topology, idOrName: string): Instance {
  let found: Instance | undefined;
  if (isUuid(idOrName)) found = t.instances.get(idOrName.toLowerCase());
  else for (const i of t.instances.values()) if (i.name === idOrName) found = i;
  if (!found) throw new NotFoundException(`instance "${idOrName}" not found`);
  return found;
}
