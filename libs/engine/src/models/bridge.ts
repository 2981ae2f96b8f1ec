import type { NetworkModelPlan } from './model.js';
import { nothing, sharedSubnetBase, sharedSubnetPort } from './common.js';

/**
 * `bridge`: a virtual L2 switch inside each host (DATAPLANE §1). Only local instances are
 * plugged in; nothing is built toward other hosts, so every host is an island.
 */
export const bridgeModel: NetworkModelPlan = {
  base: sharedSubnetBase,
  local(ctx, i, sink) {
    sharedSubnetPort(ctx, i, sink, null);
  },
  remoteHost: nothing,
  remote: nothing,
};
