import type { Change } from '../../../../libs/engine/src/index.js';

/**
 * A committed change is the engine's own `Change`: upserts carry whole objects, so the
 * revision log can be replayed by the engine (here, or in another controller replica)
 * without reading the tables again.
 */
export type { Change };
