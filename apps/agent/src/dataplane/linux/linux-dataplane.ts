/**
 * The `linux` data plane: applies resources to the kernel with iproute2 batches, nftables
 * and BIRD 2, reads the kernel back to find drift, and repairs it.
 *
 * With `netns` every command targets that namespace from outside (`ip -n`, `bridge -n`,
 * `ip netns exec` for sysctl, nft, arping and BIRD), which is how one machine hosts a
 * whole lab.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Diff, UpsertOp } from '../../../../../libs/engine/src/diff.js';
import {
  devicesReferenced,
  deviceOf,
  KIND_ORDER,
  type Resource,
  type ResourceOf,
} from '../../../../../libs/engine/src/resources.js';
import type { Dataplane, DriftItem, ResourceError } from '../dataplane.js';
import {
  DEFAULT_COMMAND_TIMEOUT_MS,
  MAX_COMMAND_OUTPUT_BYTES,
  createRunner,
  mapLimit,
  parseBatchErrors,
  parseJsonLines,
  type CommandLimits,
  type CommandResult,
  type CommandRunner,
} from './commands.js';
import {
  compareKernel,
  renderContextOf,
  type AddrJson,
  type FdbJson,
  type InstanceJson,
  type KernelSnapshot,
  type LinkJson,
  type NeighJson,
  type RouteJson,
} from './kernel-state.js';
import { INSTANCE_READ_LINES, instanceNetns } from './ports.js';
import {
  DELETE_STAGES,
  isAbsentError,
  isNftResource,
  NFT_TABLE,
  renderBirdConfig,
  renderDelete,
  renderNftables,
  renderUpsert,
  UPSERT_STAGES,
  type NftResource,
  type RenderContext,
  type Stage,
  type Step,
} from './render.js';

export interface LinuxDataplaneOptions {
  /** Manage this network namespace from outside; unset: the agent's own namespace. */
  readonly netns?: string;
  /** Instance namespaces of ports are `<instanceNetnsPrefix>-<port name>`. */
  readonly instanceNetnsPrefix: string;
  /** The host's underlay interface: never deleted or reconfigured by the agent. */
  readonly uplink: string;
  /** BIRD config, control socket and pid file, the nftables file and its digest. */
  readonly stateDir: string;
  /** Injectable for unit tests; default spawns real commands. */
  readonly run?: CommandRunner;
  /**
   * Timeout and output cap of every command the default runner spawns (default:
   * DEFAULT_COMMAND_TIMEOUT_MS and MAX_COMMAND_OUTPUT_BYTES; `--command-timeout-ms`).
   */
  readonly commandLimits?: Partial<CommandLimits>;
  /** Where warnings go (a missing optional binary); default: stderr. */
  readonly warn?: (message: string) => void;
}

/** A unit of work attributed to one key: rendered against the kernel as it is now. */
interface Work {
  readonly key: string;
  readonly render: (ctx: RenderContext) => readonly Step[];
  /** Deletes reach their goal when the object is already gone. */
  readonly tolerateAbsent: boolean;
}

interface NftState {
  /** sha256 of the table text we loaded, and of the kernel's listing right after. */
  readonly rendered: string;
  readonly kernel: string;
}

const MISSING_BINARY = 127;
/**
 * The gratuitous ARP of a floating IP is best effort: its own short timeout. `arping -c 1`
 * sends at once and then waits about a second for answers that never come.
 */
export const ARPING_TIMEOUT_MS = 3_000;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const byApplyOrder = (a: Resource, b: Resource) =>
  KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

export class LinuxDataplane implements Dataplane {
  readonly name = 'linux' as const;
  private readonly run: CommandRunner;
  /** The runner of best-effort `arping`s (a shorter timeout than `run`'s). */
  private readonly runArping: CommandRunner;
  private readonly warn: (message: string) => void;
  /** `arping` is optional: its absence is told once. */
  private arpingMissingTold = false;
  /** The gratuitous ARPs under way (`announceFloating`). */
  private announcing: Promise<void> = Promise.resolve();
  private readonly prefix: string;
  /** The desired state as last told (apply/sync/checkDrift): whole-file renders need it. */
  private desired = new Map<string, Resource>();
  /** Stale owned objects are removed only from the first complete sync on. */
  private synced = false;
  /** Operations never interleave: each reads the kernel, then changes it. */
  private queue: Promise<unknown> = Promise.resolve();
  private nftState: NftState | null | undefined;

  constructor(private readonly opts: LinuxDataplaneOptions) {
    this.run =
      opts.run ??
      createRunner({
        timeoutMs: DEFAULT_COMMAND_TIMEOUT_MS,
        maxOutputBytes: MAX_COMMAND_OUTPUT_BYTES,
        ...opts.commandLimits,
      });
    this.runArping =
      opts.run ??
      createRunner({ timeoutMs: ARPING_TIMEOUT_MS, maxOutputBytes: MAX_COMMAND_OUTPUT_BYTES });
    this.warn = opts.warn ?? ((m) => console.warn(`lattice-agent: warning: ${m}`));
    this.prefix = opts.instanceNetnsPrefix;
  }

  apply(diff: Diff): Promise<ResourceError[]> {
    return this.serialise(() => this.doApply(diff));
  }

  sync(resources: readonly Resource[]): Promise<ResourceError[]> {
    return this.serialise(async () => {
      this.desired = new Map(resources.map((r) => [r.key, r]));
      try {
        const { errors } = await this.reconcile(true);
        this.synced = true;
        return errors;
      } catch (e) {
        // The kernel could not be read back (a command timed out, say): every resource
        // failed this time, nothing crashes; the next sync or drift check tries again.
        // Not a complete sync, so stale objects are not removed yet.
        return resources.map((r) => ({ key: r.key, message: failureMessage(e) }));
      }
    });
  }

  checkDrift(desired: ReadonlyMap<string, Resource>): Promise<DriftItem[]> {
    return this.serialise(async () => {
      this.desired = new Map(desired);
      return (await this.reconcile(this.synced)).drift;
    });
  }

  /** Leaves the data plane as it is: nothing is torn down because the agent stops. */
  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    await this.announcing;
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  // ---- command lines ------------------------------------------------------------------

  private ip(...args: string[]): string[] {
    return this.opts.netns ? ['ip', '-n', this.opts.netns, ...args] : ['ip', ...args];
  }

  private bridge(...args: string[]): string[] {
    return this.opts.netns ? ['bridge', '-n', this.opts.netns, ...args] : ['bridge', ...args];
  }

  /** Processes (sysctl, nft, bird) run inside the host namespace. */
  private inHost(...argv: string[]): string[] {
    return this.opts.netns ? ['ip', 'netns', 'exec', this.opts.netns, ...argv] : argv;
  }

  private file(name: string): string {
    return join(this.opts.stateDir, name);
  }

  // ---- apply ----------------------------------------------------------------------------

  private async doApply(diff: Diff): Promise<ResourceError[]> {
    const errors = new Map<string, string>();
    try {
      await this.applyInto(diff, errors);
    } catch (e) {
      // Reading the kernel failed (e.g. `ip -j link show` timed out and was killed): the
      // resources of this diff not yet settled fail with that message, so the agent
      // reports them in its status instead of never answering the frame.
      const message = failureMessage(e);
      for (const r of [...diff.upserts, ...diff.deletes])
        if (!errors.has(r.key)) errors.set(r.key, message);
    }
    return [...errors].map(([key, message]) => ({ key, message }));
  }

  private async applyInto(diff: Diff, errors: Map<string, string>): Promise<void> {
    for (const u of diff.upserts) this.desired.set(u.key, stripOp(u));
    for (const r of diff.deletes) this.desired.delete(r.key);
    const ctx = await this.readContext();
    // Whole-file kinds (the nftables table, the BIRD config) are not lines: see below. A
    // floating IP is both: its address here, its NAT rules in the table.
    const upserts = diff.upserts.filter(
      (u) => u.kind === 'fip' || (!isNftResource(u) && u.kind !== 'bgp'),
    );
    this.precheck(upserts, ctx, errors);
    await this.execute(
      upserts.filter((u) => !errors.has(u.key)).map((u) => this.upsertWork(u, u.op)),
      UPSERT_STAGES,
      ctx,
      errors,
    );
    // One load of the whole table for any number of filter/policy/pmember changes; a
    // failure is the error of each of them (the kernel keeps the previous table).
    const nftChanges = [...diff.upserts, ...diff.deletes].filter(isNftResource);
    if (nftChanges.length > 0) await this.loadNftables(errors, nftChanges);
    // Once its address and NAT rules are in place, neighbours learn where it lives now.
    this.announceFloating(upserts, errors);
    const bgp = diff.upserts.find((u) => u.kind === 'bgp');
    if (bgp?.kind === 'bgp') await this.ensureBird(bgp, errors);
    else if (diff.deletes.some((r) => r.kind === 'bgp') && !this.desired.has('bgp:speaker')) {
      await this.stopBird();
    }
    await this.execute(
      diff.deletes.map((r) => this.deleteWork(r)),
      DELETE_STAGES,
      await this.readContext(),
      errors,
    );
    await this.removeEmptyNamespaces(diff.deletes.filter((r) => !errors.has(r.key)));
  }

  private upsertWork(r: Resource, op: UpsertOp): Work {
    return { key: r.key, render: (ctx) => renderUpsert(r, op, ctx), tolerateAbsent: false };
  }

  private deleteWork(r: Resource): Work {
    const render = (ctx: RenderContext): readonly Step[] => {
      const steps = renderDelete(r, ctx).filter((s) => s.line !== `link del ${this.opts.uplink}`);
      // An instance namespace is removed afterwards, and only when nothing is plugged into
      // it any more (see removeEmptyNamespaces): a moved instance's namespace may already
      // hold the new host's veth.
      return r.kind === 'port' ? steps.filter((s) => s.stage !== 'netns') : steps;
    };
    return { key: r.key, render, tolerateAbsent: true };
  }

  /**
   * Deletes the namespaces of removed ports that hold nothing but `lo`. One that another
   * port of this host or another host's agent has plugged into (an instance moved in the
   * lab: both hosts' agents use the same instance namespace) stays.
   */
  private async removeEmptyNamespaces(ports: readonly Resource[]): Promise<void> {
    for (const r of ports) {
      if (r.kind !== 'port') continue;
      const ns = instanceNetns(this.prefix, r.spec);
      const res = await this.run(['ip', '-n', ns, '-j', 'link', 'show']);
      if (res.code !== 0) continue; // already gone
      const links = res.stdout.trim() ? (JSON.parse(res.stdout) as { ifname: string }[]) : [];
      if (links.every((l) => l.ifname === 'lo')) await this.run(['ip', 'netns', 'del', ns]);
    }
  }

  /**
   * Fails upserts whose devices are neither present nor created earlier in this apply.
   * Besides a clear message, it keeps such lines out of the batch: iproute2 exits on an
   * unknown `master`/`dev` argument even with `-force`, which would cost a slow retry.
   */
  private precheck(upserts: readonly Resource[], ctx: RenderContext, errors: Map<string, string>) {
    const known = new Set(ctx.links);
    for (const r of upserts) {
      const refs = [...devicesReferenced(r)];
      if (r.kind === 'vxlan' || r.kind === 'tunnel' || r.kind === 'fip') refs.push(r.spec.dev);
      if (r.kind === 'uplink' && !known.has(r.spec.name)) refs.push(r.spec.parent);
      const missing = refs.filter((d) => !known.has(d));
      if (missing.length > 0) {
        errors.set(r.key, `device ${missing.join(', ')} does not exist`);
        continue;
      }
      const dev = deviceOf(r);
      if (dev) known.add(dev);
    }
  }

  // ---- execution ------------------------------------------------------------------------

  /**
   * Runs the work stage by stage, one batch per stage (`-force`: a failing line does not
   * stop the others), and attributes every failing line to its key. A key that failed in
   * an earlier stage is not carried into later ones.
   */
  private async execute(
    work: readonly Work[],
    stages: readonly Stage[],
    ctx: RenderContext,
    errors: Map<string, string>,
  ): Promise<void> {
    if (work.length === 0) return;
    const rendered = work.map((w) => ({ w, steps: w.render(ctx) }));
    for (const stage of stages) {
      const items = rendered
        .filter(({ w }) => !errors.has(w.key))
        .flatMap(({ w, steps }) =>
          steps.filter((s) => s.stage === stage).map((step) => ({ w, step })),
        );
      if (items.length === 0) continue;
      if (stage === 'sysctl') {
        for (const { w, step } of items) {
          const res = await this.run(this.inHost('sysctl', '-q', '-w', step.line));
          if (res.code !== 0) errors.set(w.key, res.stderr.trim() || `sysctl exit ${res.code}`);
        }
      } else if (stage === 'instance') {
        const byNs = new Map<string, typeof items>();
        for (const it of items) {
          const ns = it.step.ns ?? '';
          byNs.set(ns, [...(byNs.get(ns) ?? []), it]);
        }
        await mapLimit([...byNs], 8, ([ns, nsItems]) =>
          this.runBatch(['ip', '-n', ns], nsItems, stage, errors),
        );
      } else {
        const argv = stage === 'netns' ? ['ip'] : stage === 'ip' ? this.ip() : this.bridge();
        await this.runBatch(argv, items, stage, errors);
      }
    }
  }

  private async runBatch(
    argv: readonly string[],
    items: readonly { w: Work; step: Step }[],
    stage: Stage,
    errors: Map<string, string>,
  ): Promise<void> {
    const res = await this.run([...argv, '-force', '-batch', '-'], batchText(items));
    if (res.code === MISSING_BINARY) {
      for (const { w } of items) errors.set(w.key, `${argv[0]} not installed`);
      return;
    }
    if (res.killed !== undefined) {
      // Timed out (or flooded its output) and killed: which lines ran is unknown, and
      // retrying them one by one could cost a timeout each. All fail; drift repairs later.
      for (const { w } of items) if (!errors.has(w.key)) errors.set(w.key, res.killed);
      return;
    }
    const outcome = parseBatchErrors(res.stderr, res.code);
    for (const [line, message] of outcome.failed) {
      const it = items[line];
      if (!it || it.step.optional || (it.w.tolerateAbsent && isAbsentError(message))) continue;
      if (!errors.has(it.w.key)) errors.set(it.w.key, message);
    }
    if (outcome.aborted === null) return;
    // The tool exited part-way and we cannot tell which lines ran: re-read the kernel,
    // re-render each remaining key (renders are idempotent against what now exists) and
    // run it alone, so that the failure lands on the right key and the rest is applied.
    const pending = [...new Set(items.map((i) => i.w))].filter((w) => !errors.has(w.key));
    const ctx = await this.readContext();
    for (const w of pending) {
      const steps = w.render(ctx).filter((s) => s.stage === stage);
      if (steps.length === 0) continue;
      const alone = steps.map((step) => ({ w, step }));
      const r = await this.run([...argv, '-force', '-batch', '-'], batchText(alone));
      if (r.killed !== undefined) {
        // Hung again: the rest would each wait as long.
        for (const p of pending) if (!errors.has(p.key)) errors.set(p.key, r.killed);
        return;
      }
      const o = parseBatchErrors(r.stderr, r.code);
      const messages = [
        ...[...o.failed]
          .filter(([i, m]) => !alone[i]?.step.optional && !(w.tolerateAbsent && isAbsentError(m)))
          .map(([, m]) => m),
        ...(o.aborted !== null && !(w.tolerateAbsent && isAbsentError(o.aborted))
          ? [o.aborted]
          : []),
      ];
      if (messages.length > 0) errors.set(w.key, messages[0]);
    }
  }

  // ---- reading the kernel back ----------------------------------------------------------

  private async readJson<T>(argv: readonly string[]): Promise<T[]> {
    const res = await this.run(argv);
    if (res.killed !== undefined) throw new Error(res.killed);
    if (res.code !== 0) throw new Error(`${argv.join(' ')}: ${res.stderr.trim()}`);
    const text = res.stdout.trim();
    return text ? (JSON.parse(text) as T[]) : [];
  }

  private async readNamespaces(): Promise<Set<string>> {
    const list = await this.readJson<{ name: string }>(['ip', '-j', 'netns', 'list']);
    return new Set(list.map((n) => n.name));
  }

  /** Just what rendering needs: existing devices and namespaces. */
  private async readContext(): Promise<RenderContext> {
    const [links, namespaces] = await Promise.all([
      this.readJson<LinkJson>(this.ip('-j', 'link', 'show')),
      this.readNamespaces(),
    ]);
    return {
      instanceNetnsPrefix: this.prefix,
      links: new Set(links.map((l) => l.ifname)),
      namespaces,
    };
  }

  private async readSnapshot(desired: readonly Resource[]): Promise<KernelSnapshot> {
    const sysctlNames = desired.flatMap((r) => (r.kind === 'sysctl' ? [r.spec.name] : []));
    const [links, addrs, routes4, routes6, neighs, fdb, namespaces, nsids, sysctls] =
      await Promise.all([
        this.readJson<LinkJson>(this.ip('-j', '-d', 'link', 'show')),
        this.readJson<AddrJson>(this.ip('-j', 'addr', 'show')),
        this.readJson<RouteJson>(this.ip('-j', 'route', 'show')),
        this.readJson<RouteJson>(this.ip('-6', '-j', 'route', 'show')),
        this.readJson<NeighJson>(this.ip('-j', 'neigh', 'show')),
        this.readJson<FdbJson>(this.bridge('-j', 'fdb', 'show')),
        this.readNamespaces(),
        this.readJson<{ nsid: number; name?: string }>(this.ip('-j', 'netns', 'list-id')),
        Promise.all(
          sysctlNames.map(async (n) => {
            const r = await this.run(this.inHost('sysctl', '-n', n));
            return [n, r.code === 0 ? r.stdout.trim().replace(/\s+/g, ' ') : '?'] as const;
          }),
        ),
      ]);
    const ports = desired.filter((r): r is ResourceOf<'port'> => r.kind === 'port');
    const instanceNames = [...new Set(ports.map((p) => instanceNetns(this.prefix, p.spec)))];
    const instances = await mapLimit(instanceNames, 8, async (ns) => {
      if (!namespaces.has(ns)) return [ns, null] as const;
      const res = await this.run(
        ['ip', '-n', ns, '-j', '-batch', '-'],
        batchText(INSTANCE_READ_LINES),
      );
      const docs = parseJsonLines(res.stdout) as [InstanceJson['addrs'], InstanceJson['routes']];
      const instance: InstanceJson = { addrs: docs[0] ?? [], routes: docs[1] ?? [] };
      return [ns, instance] as const;
    });
    return {
      links: new Map(links.map((l) => [l.ifname, l])),
      addrs,
      routes: [...routes4, ...routes6],
      neighs,
      fdb,
      namespaces,
      nsids: new Map(nsids.flatMap((n) => (n.name ? [[n.nsid, n.name] as const] : []))),
      sysctls: new Map(sysctls),
      instances: new Map(instances),
    };
  }

  // ---- sync and drift -------------------------------------------------------------------

  /**
   * Reads the kernel back, re-applies what differs and, when `removeStale`, removes the
   * owned objects nobody wants. Returns the drift found and the errors of the repairs.
   */
  private async reconcile(
    removeStale: boolean,
  ): Promise<{ drift: DriftItem[]; errors: ResourceError[] }> {
    const desired = [...this.desired.values()].sort(byApplyOrder);
    const snap = await this.readSnapshot(desired);
    const cmp = compareKernel(desired, snap, this.prefix);
    const errors = new Map<string, string>();
    const ctx = renderContextOf(snap, this.prefix);
    const repairs = cmp.repairs;
    this.precheck(
      repairs.map((r) => r.resource),
      ctx,
      errors,
    );
    await this.execute(
      repairs
        .filter((r) => !errors.has(r.resource.key))
        .map((r) => this.upsertWork(r.resource, r.op)),
      UPSERT_STAGES,
      ctx,
      errors,
    );
    const drift: DriftItem[] = [];
    const seen = new Set<string>();
    const report = (key: string, message: string, attempted: boolean) => {
      if (seen.has(key)) return;
      seen.add(key);
      drift.push({ key, message, repaired: attempted && !errors.has(key) });
    };
    for (const r of repairs) report(r.resource.key, r.message, true);

    for (const item of await this.nftDrift(removeStale, errors)) {
      report(item.key, item.message, item.attempted);
    }
    this.announceFloating(
      repairs.map((r) => r.resource),
      errors,
    );
    for (const item of await this.birdDrift(removeStale, errors)) {
      report(item.key, item.message, item.attempted);
    }

    if (removeStale && cmp.stale.length > 0) {
      await this.execute(
        cmp.stale.map((s) => ({ key: s.key, render: () => s.steps, tolerateAbsent: true })),
        DELETE_STAGES,
        ctx,
        errors,
      );
    }
    for (const s of cmp.stale) report(s.key, s.message, removeStale);
    return { drift, errors: [...errors].map(([key, message]) => ({ key, message })) };
  }

  // ---- floating IPs ---------------------------------------------------------------------

  /**
   * One gratuitous ARP per floating IP of `applied` that has no error (its address is on the
   * uplink now), all at once: `arping -U` makes neighbours that cached the address's previous
   * host (it moved with its instance) update their entry. Best effort: a failure or a missing
   * `arping` is no error of the resource (neighbours then learn it when their entry expires).
   * In the background, one round after another: `arping -c 1` waits about a second for
   * answers that never come, which must not delay the report of what was applied (the
   * address already answers ARP requests itself). `close()` waits for it.
   */
  private announceFloating(
    applied: readonly Resource[],
    errors: ReadonlyMap<string, string>,
  ): void {
    const fips = applied.filter(
      (r): r is ResourceOf<'fip'> => r.kind === 'fip' && !errors.has(r.key),
    );
    if (fips.length === 0) return;
    this.announcing = this.announcing
      .then(() => this.sendGratuitousArps(fips))
      .catch(() => undefined);
  }

  private async sendGratuitousArps(fips: readonly ResourceOf<'fip'>[]): Promise<void> {
    await mapLimit(fips, 8, async ({ spec }) => {
      const res = await this.runArping(
        this.inHost('arping', '-U', '-c', '1', '-I', spec.dev, spec.address),
      );
      // `ip netns exec` reports a missing binary as its own failure (exit 1).
      if (res.code === MISSING_BINARY || /exec of "arping" failed: No such file/.test(res.stderr)) {
        if (!this.arpingMissingTold) {
          this.arpingMissingTold = true;
          this.warn('arping not installed (iputils-arping): floating IPs are not announced');
        }
      } else if (res.code !== 0) {
        const why = (res.killed ?? (res.stderr || res.stdout)).trim() || `exit ${res.code}`;
        this.warn(`gratuitous ARP for ${spec.address} on ${spec.dev} failed: ${why}`);
      }
    });
  }

  // ---- nftables -------------------------------------------------------------------------

  /** The desired resources of the nftables table: filters, policies, sets, floating IPs. */
  private nftResources(): NftResource[] {
    return [...this.desired.values()].filter(isNftResource);
  }

  private async getNftState(): Promise<NftState | null> {
    if (this.nftState === undefined) {
      try {
        this.nftState = JSON.parse(await readFile(this.file('nft.state.json'), 'utf8')) as NftState;
      } catch {
        this.nftState = null;
      }
    }
    return this.nftState;
  }

  /** Loads the whole table; failures are reported on `blame` (default: all of its resources). */
  private async loadNftables(
    errors: Map<string, string>,
    blame: readonly Resource[] = this.nftResources(),
  ): Promise<void> {
    const resources = this.nftResources();
    const text = renderNftables(resources);
    await mkdir(this.opts.stateDir, { recursive: true });
    const path = this.file('lattice.nft');
    await writeAtomic(path, text);
    const res = await this.run(this.inHost('nft', '-f', path));
    if (res.code !== 0) {
      const message =
        res.code === MISSING_BINARY ? 'nft not installed' : res.stderr.trim() || 'nft failed';
      for (const r of blame) if (!errors.has(r.key)) errors.set(r.key, message);
      return;
    }
    const listing = resources.length > 0 ? await this.listNftTable() : null;
    this.nftState = { rendered: sha256(text), kernel: listing === null ? '' : sha256(listing) };
    await writeAtomic(this.file('nft.state.json'), JSON.stringify(this.nftState));
  }

  /** The kernel's listing of our table, or null when absent (or nft is missing). */
  private async listNftTable(): Promise<string | null> {
    const res = await this.run(this.inHost('nft', 'list', 'table', ...NFT_TABLE.split(' ')));
    return res.code === 0 ? res.stdout : null;
  }

  /**
   * The table is compared by digest: of what we rendered (the desired rules changed) and
   * of the kernel's own listing right after loading (someone changed the kernel).
   */
  private async nftDrift(
    removeStale: boolean,
    errors: Map<string, string>,
  ): Promise<{ key: string; message: string; attempted: boolean }[]> {
    const resources = this.nftResources();
    const listing = await this.listNftTable();
    if (resources.length === 0) {
      if (listing === null) return [];
      if (removeStale) await this.loadNftables(errors, []);
      return [{ key: 'filter:*', message: `stale table ${NFT_TABLE}`, attempted: removeStale }];
    }
    const state = await this.getNftState();
    let message: string | null = null;
    if (listing === null) message = `table ${NFT_TABLE} missing`;
    else if (state?.rendered !== sha256(renderNftables(resources))) message = 'rules differ';
    else if (state.kernel !== sha256(listing)) message = `table ${NFT_TABLE} changed in the kernel`;
    if (message === null) return [];
    await this.loadNftables(errors);
    return resources.map((r) => ({ key: r.key, message, attempted: true }));
  }

  // ---- BIRD -----------------------------------------------------------------------------

  private birdFiles() {
    return { conf: this.file('bird.conf'), ctl: this.file('bird.ctl'), pid: this.file('bird.pid') };
  }

  private async birdRunning(): Promise<boolean> {
    const res = await this.run(this.inHost('birdc', '-s', this.birdFiles().ctl, 'show', 'status'));
    return res.code === 0;
  }

  /** Writes the config, then starts BIRD, or has the running one reload it. */
  private async ensureBird(r: ResourceOf<'bgp'>, errors: Map<string, string>): Promise<void> {
    const { conf, ctl, pid } = this.birdFiles();
    await mkdir(this.opts.stateDir, { recursive: true });
    await writeAtomic(conf, renderBirdConfig(r.spec));
    const fail = (res: CommandResult, what: string) =>
      errors.set(
        r.key,
        res.code === MISSING_BINARY
          ? 'bird not installed'
          : `${what}: ${(res.killed ?? (res.stderr || res.stdout)).trim()}`,
      );
    const parsed = await this.run(this.inHost('bird', '-p', '-c', conf));
    if (parsed.code !== 0) return void fail(parsed, 'invalid BIRD config');
    if (await this.birdRunning()) {
      const res = await this.run(this.inHost('birdc', '-s', ctl, 'configure'));
      // birdc exits 0 even when the daemon rejects the configuration.
      if (res.code !== 0 || !/Reconfigur/.test(res.stdout)) fail(res, 'BIRD reconfigure');
    } else {
      const res = await this.run(this.inHost('bird', '-c', conf, '-s', ctl, '-P', pid));
      if (res.code !== 0) fail(res, 'BIRD start');
    }
  }

  private async stopBird(): Promise<void> {
    await this.run(this.inHost('birdc', '-s', this.birdFiles().ctl, 'down'));
  }

  private async birdDrift(
    removeStale: boolean,
    errors: Map<string, string>,
  ): Promise<{ key: string; message: string; attempted: boolean }[]> {
    const bgp = this.desired.get('bgp:speaker');
    const running = await this.birdRunning();
    if (bgp?.kind !== 'bgp') {
      if (!running) return [];
      if (removeStale) await this.stopBird();
      return [{ key: 'bgp:speaker', message: 'stale BIRD speaker', attempted: removeStale }];
    }
    const current = await readFile(this.birdFiles().conf, 'utf8').catch(() => null);
    const message = !running
      ? 'BIRD not running'
      : current !== renderBirdConfig(bgp.spec)
        ? 'BIRD config differs'
        : null;
    if (message === null) return [];
    await this.ensureBird(bgp, errors);
    return [{ key: bgp.key, message, attempted: true }];
  }
}

function failureMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function stripOp(u: Diff['upserts'][number]): Resource {
  const { op: _op, ...r } = u;
  return r;
}

function batchText(items: readonly ({ step: Step } | string)[]): string {
  return items.map((i) => (typeof i === 'string' ? i : i.step.line) + '\n').join('');
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}
