/**
 * The trace's policy verdict (trace.ts PolicyHook), read from the host's desired state
 * exactly as the agent renders it: the instance's `policy` resource and the `pmember`
 * resources of the sets its rules name.
 */
import { vethName } from '../names.js';
import type { PolicyHook } from '../trace.js';
import { firstAllowing } from './evaluate.js';

export const policyTraceHook: PolicyHook = (flow) => {
  const key = `policy:${vethName(flow.instance.id)}`;
  const r = flow.state.get(key);
  if (r?.kind !== 'policy') return null;
  const rules = r.spec[flow.direction];
  if (rules === null) return null;
  const peer = flow.direction === 'ingress' ? flow.srcIp : flow.dstIp;
  const inSet = (set: string, address: string) => flow.state.has(`pmember:${set}:${address}`);
  const m = firstAllowing(rules, peer, flow.proto, flow.port, inSet);
  if (!m) {
    const names = [...new Set(rules.map((x) => x.policy))];
    return {
      allow: false,
      rule:
        `no ${flow.direction} rule of ${names.length > 0 ? `policy ${names.join(', ')}` : 'any policy'} ` +
        `allows it (default deny of ${flow.instance.name})`,
      resources: [key],
    };
  }
  const member = m.peer && 'set' in m.peer ? [`pmember:${m.peer.set}:${peer}`] : [];
  return {
    allow: true,
    rule: `policy ${m.rule.policy} ${flow.direction} rule ${m.rule.rule}`,
    resources: [key, ...member],
  };
};
