import type {
  Host,
  HostBlock,
  Instance,
  Network,
  Router,
} from '../../../../libs/model/src/index.js';

/**
 * One committed change to the domain, as recorded in the revision log. Upserts carry the
 * whole object, so the log can be replayed (by the desired-state engine, or by another
 * controller replica) without reading the tables again.
 */
export type Change =
  | { readonly kind: 'host'; readonly op: 'upsert'; readonly host: Host }
  | { readonly kind: 'host'; readonly op: 'delete'; readonly id: string }
  | { readonly kind: 'network'; readonly op: 'upsert'; readonly network: Network }
  | { readonly kind: 'network'; readonly op: 'delete'; readonly id: string }
  | { readonly kind: 'instance'; readonly op: 'upsert'; readonly instance: Instance }
  | { readonly kind: 'instance'; readonly op: 'delete'; readonly id: string }
  | { readonly kind: 'block'; readonly op: 'upsert'; readonly block: HostBlock }
  | { readonly kind: 'block'; readonly op: 'delete'; readonly block: HostBlock }
  | { readonly kind: 'router'; readonly op: 'upsert'; readonly router: Router }
  | { readonly kind: 'router'; readonly op: 'delete'; readonly id: string };

export interface CommittedRevision {
  readonly revision: number;
  readonly hosts: readonly string[];
  readonly changes: readonly Change[];
}
