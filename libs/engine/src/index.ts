/**
 * Lattice desired-state engine: a pure library (no I/O, no framework) that computes, for
 * every host, the resources its agent must apply under each network's model, and the
 * typed, ordered diffs between two states.
 */
export * from './resources.js';
export * from './names.js';
export {
  computeAll,
  computeHost,
  computeHostState,
  EMPTY_STATE,
  type DesiredState,
} from './compute.js';
export * from './diff.js';
export * from './engine.js';
export { TopologyIndex } from './topology-index.js';
export { MODELS } from './models/registry.js';
export type { NetworkModelPlan, HostSink } from './models/model.js';
export { NetworkOnHost } from './models/model.js';
export { FakeAgent, FakeAgentError } from './fake-agent.js';
export * from './trace.js';
export * from './policy/preview.js';
export { policyTraceHook } from './policy/trace-hook.js';
export { instancePolicy, policyResources, peerSetOf } from './policy/compile.js';
