import type { NetworkModel } from '../../../model/src/index.js';
import type { NetworkModelPlan } from './model.js';
import { bridgeModel } from './bridge.js';
import { fabricModel } from './fabric.js';
import { overlayModel } from './overlay.js';
import { routedModel } from './routed.js';
import { vlanModel } from './vlan.js';

/** One plan per networking model; the mapped type makes the registry exhaustive. */
export const MODELS: { readonly [M in NetworkModel]: NetworkModelPlan } = {
  bridge: bridgeModel,
  vlan: vlanModel,
  routed: routedModel,
  overlay: overlayModel,
  fabric: fabricModel,
};
