#!/usr/bin/env node
/**
 * latticectl: the operator's command line for a Lattice controller (like ovn-nbctl,
 * calicoctl, kubectl). Everything goes through the REST API; see README "CLI".
 *
 * Exit codes: 0 done; 1 the controller refused (another 4xx or a 5xx); 2 usage (flags,
 * files); 3 controller unreachable; 4 not found; 5 conflict; 6 wait timed out;
 * 7 not authorised (401/403).
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { programVersion } from '../../../libs/version/src/index.js';
import { ApiError, ControllerClient, UnreachableError } from './client.js';
import { ConfigProblem, resolveSettings, writeConfig, configPath } from './config.js';
import { bodyOf, KINDS, KIND_WORDS, kindOf, type Kind } from './kinds.js';
import { describeBlock, FORMATS, render, table, type Format } from './output.js';
import { completion } from './completion.js';

export const EXIT = {
  ok: 0,
  refused: 1,
  usage: 2,
  unreachable: 3,
  notFound: 4,
  conflict: 5,
  timeout: 6,
  unauthorised: 7,
} as const;

class Usage extends Error {}

type Row = Record<string, any>;

const out = (text: string) => {
  if (text !== '') process.stdout.write(text + '\n');
};

// ---------------------------------------------------------------------------------------
// Shared options and helpers.

function client(cmd: Command): ControllerClient {
  const g = cmd.optsWithGlobals<{ server?: string; token?: string; config?: string }>();
  const s = resolveSettings(g);
  for (const w of s.warnings) process.stderr.write(`latticectl: warning: ${w}\n`);
  return new ControllerClient(s.server, s.token);
}

function format(cmd: Command): Format {
  return cmd.opts<{ output?: Format }>().output ?? 'table';
}

const outputOption = () =>
  new Option('-o, --output <format>', 'table, json, yaml or name')
    .choices(FORMATS)
    .default('table');

function needKind(word: string): Kind {
  const k = kindOf(word);
  if (!k)
    throw new Usage(
      `unknown kind "${word}": one of ${KINDS.map((x) => x.plural).join(', ')} (or their singular)`,
    );
  return k;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `?wait=applied&timeoutMs=` for mutating calls given --wait. */
function waitQuery(o: { wait?: boolean; timeout?: string }, extra: string[] = []): string {
  const q = [...extra];
  if (o.wait) {
    q.push('wait=applied');
    if (o.timeout !== undefined) q.push(`timeoutMs=${seconds(o.timeout) * 1000}`);
  }
  return q.length > 0 ? `?${q.join('&')}` : '';
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new Usage(`--timeout must be a positive number of seconds, got "${v}"`);
  return n;
}

function jsonData(v: string | undefined): Row {
  if (v === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (e) {
    throw new Usage(`--data is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Usage('--data must be a JSON object');
  return parsed;
}

/** The objects of a YAML or JSON file (`-` is stdin): documents, arrays, or `items:`. */
export function readObjects(file: string): { kind: Kind; body: Row }[] {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new Usage(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  const objects: unknown[] = [];
  for (const [i, d] of list.entries()) {
    if (d.errors.length > 0)
      throw new Usage(
        `${file}: document ${i + 1} is not valid YAML: ${d.errors[0].message.split('\n')[0]}`,
      );
    const v = d.toJS() as unknown;
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) objects.push(...v);
    else if (typeof v === 'object' && Array.isArray((v as Row).items))
      objects.push(...(v as Row).items);
    else objects.push(v);
  }
  return objects.map((o, i) => {
    if (typeof o !== 'object' || o === null || Array.isArray(o))
      throw new Usage(`${file}: object ${i + 1} is not a mapping`);
    const { kind: word, ...body } = o as Row;
    if (typeof word !== 'string')
      throw new Usage(
        `${file}: object ${i + 1} has no "kind" (one of ${KINDS.map((k) => k.name).join(', ')})`,
      );
    const kind = kindOf(word);
    if (!kind) throw new Usage(`${file}: object ${i + 1}: unknown kind "${word}"`);
    if (typeof body.name !== 'string')
      throw new Usage(`${file}: object ${i + 1} (${kind.name}) has no "name"`);
    return { kind, body };
  });
}

/** The flags the user gave on the command line, by attribute name. */
function given(cmd: Command, skip: string[]): string[] {
  return cmd.options
    .map((o) => o.attributeName())
    .filter((a) => !skip.includes(a) && cmd.getOptionValueSource(a) === 'cli');
}

const flagName = (attr: string) => '--' + attr.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const COMMON_FLAGS = ['output', 'wait', 'timeout', 'data', 'file', 'dryRun'];

/** The body the kind's flags make; a flag the kind does not take is a usage error. */
function flagBody(cmd: Command, kind: Kind, verb: 'create' | 'patch'): Row {
  const flags = kind[verb];
  const typed = given(cmd, COMMON_FLAGS);
  for (const a of typed)
    if (!(a in flags))
      throw new Usage(
        `${flagName(a)} does not apply to ${verb} ${kind.name}` +
          (Object.keys(flags).length > 0
            ? ` (it takes ${Object.keys(flags).map(flagName).join(', ')})`
            : ' (give its fields with --data JSON or -f FILE)'),
      );
  try {
    return bodyOf(flags, cmd.opts(), typed);
  } catch (e) {
    throw new Usage(e instanceof Error ? e.message : String(e));
  }
}

/** What a mutation printed in table form: `kind/name verb (revision N)`, secrets once. */
function mutated(kind: Kind, body: Row, verb: string, fmt: Format): string {
  if (fmt !== 'table') return render(body, fmt, kind.columns);
  const lines = [
    `${kind.name}/${body.name} ${verb}` +
      (typeof body.revision === 'number'
        ? ` (revision ${body.revision}${typeof body.appliedInMs === 'number' ? `, applied in ${body.appliedInMs} ms` : ''})`
        : ''),
  ];
  if (body.agentToken) lines.push(`agent token (shown once): ${body.agentToken}`);
  if (body.token) lines.push(`join token (shown once): ${body.token}`);
  if (body.dryRun) lines.push(describeBlock(body));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------
// Commands.

async function get(kindWord: string, names: string[], _o: Row, cmd: Command) {
  const kind = needKind(kindWord);
  const o = cmd.opts<{ network?: string; host?: string; label?: string; model?: string }>();
  const c = client(cmd);
  let rows: Row[];
  if (names.length === 0) {
    const q: string[] = [];
    if (o.network) q.push(`network=${encodeURIComponent(o.network)}`);
    if (o.host) q.push(`host=${encodeURIComponent(o.host)}`);
    if (o.label) q.push(`label=${encodeURIComponent(o.label)}`);
    if (o.model) q.push(`model=${encodeURIComponent(o.model)}`);
    if ((o.network || o.host || o.label) && kind.name !== 'instance')
      throw new Usage('--network, --host and --label filter instances only');
    if (o.model && kind.name !== 'network') throw new Usage('--model filters networks only');
    rows = await c.list<Row>(`${kind.path}${q.length ? `?${q.join('&')}` : ''}`);
  } else {
    rows = [];
    for (const n of names)
      rows.push(await c.request<Row>('GET', `${kind.path}/${encodeURIComponent(n)}`));
  }
  const fmt = format(cmd);
  if (fmt === 'table' && rows.length === 0) {
    process.stderr.write(`no ${kind.plural}\n`);
    return;
  }
  out(render(names.length === 1 ? rows[0] : rows, fmt, kind.columns));
}

async function describe(kindWord: string, name: string, _o: Row, cmd: Command) {
  const kind = needKind(kindWord);
  const c = client(cmd);
  const obj = await c.request<Row>('GET', `${kind.path}/${encodeURIComponent(name)}`);
  const fmt = format(cmd);
  const extra: Row = {};
  if (kind.name === 'host') {
    const ds = await c.request<{ revision: number; resources: { kind: string }[] }>(
      'GET',
      `/hosts/${encodeURIComponent(obj.id)}/desired-state`,
    );
    const byKind: Record<string, number> = {};
    for (const r of ds.resources) byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
    extra.desiredState = { revision: ds.revision, resources: ds.resources.length, byKind };
    extra.instances = (await c.list<Row>(`/instances?host=${encodeURIComponent(obj.id)}`)).map(
      (i) => `${i.name} ${i.ip} (${i.network}, ${i.state})`,
    );
  }
  if (kind.name === 'network')
    extra.instances = (await c.list<Row>(`/instances?network=${encodeURIComponent(obj.id)}`)).map(
      (i) => `${i.name} ${i.ip} on ${i.host} (${i.state})`,
    );
  const full = { kind: kind.name, ...obj, ...extra };
  out(fmt === 'table' ? describeBlock(full) : render(full, fmt, kind.columns));
}

async function createOne(c: ControllerClient, kind: Kind, body: Row, o: Row): Promise<Row> {
  const extra = o.dryRun ? ['dryRun=true'] : [];
  return c.request<Row>('POST', `${kind.path}${waitQuery(o, extra)}`, body);
}

async function create(
  kindWord: string | undefined,
  name: string | undefined,
  _o: Row,
  cmd: Command,
) {
  const o = cmd.opts<Row>();
  const fmt = format(cmd);
  if (o.file) {
    if (kindWord !== undefined)
      throw new Usage('give either -f FILE or a kind and a name, not both');
    const objects = readObjects(o.file as string).sort((a, b) => a.kind.order - b.kind.order);
    const c = client(cmd);
    const done: Row[] = [];
    for (const { kind, body } of objects) {
      const r = await createOne(c, kind, body, o);
      done.push({ kind: kind.name, ...r });
      if (fmt === 'table') out(mutated(kind, r, o.dryRun ? 'would be created' : 'created', fmt));
    }
    if (fmt !== 'table') out(render(done, fmt, []));
    return;
  }
  if (!kindWord || !name) throw new Usage('create needs a kind and a name (or -f FILE)');
  const kind = needKind(kindWord);
  const fromFlags = flagBody(cmd, kind, 'create');
  const body = { name, ...fromFlags, ...jsonData(o.data as string | undefined) };
  const r = await createOne(client(cmd), kind, body, o);
  out(mutated(kind, r, o.dryRun ? 'would be created' : 'created', fmt));
}

async function patch(kindWord: string, name: string, _o: Row, cmd: Command) {
  const o = cmd.opts<Row>();
  const kind = needKind(kindWord);
  const fromFlags = flagBody(cmd, kind, 'patch');
  const body = { ...fromFlags, ...jsonData(o.data as string | undefined) };
  if (Object.keys(body).length === 0)
    throw new Usage(`patch ${kind.name} needs something to change (flags or --data JSON)`);
  const extra = o.dryRun ? ['dryRun=true'] : [];
  const r = await client(cmd).request<Row>(
    'PATCH',
    `${kind.path}/${encodeURIComponent(name)}${waitQuery(o, extra)}`,
    body,
  );
  out(mutated(kind, r, o.dryRun ? 'would be changed' : 'changed', format(cmd)));
}

async function del(kindWord: string | undefined, names: string[], _o: Row, cmd: Command) {
  const o = cmd.opts<Row>();
  const fmt = format(cmd);
  let targets: { kind: Kind; name: string }[];
  if (o.file) {
    if (kindWord !== undefined)
      throw new Usage('give either -f FILE or a kind and names, not both');
    targets = readObjects(o.file as string)
      .sort((a, b) => a.kind.order - b.kind.order)
      .reverse()
      .map(({ kind, body }) => ({ kind, name: body.name as string }));
  } else {
    if (!kindWord || names.length === 0)
      throw new Usage('delete needs a kind and at least one name (or -f FILE)');
    const kind = needKind(kindWord);
    targets = names.map((name) => ({ kind, name }));
  }
  const c = client(cmd);
  const done: Row[] = [];
  for (const { kind, name } of targets) {
    const r = await c.request<Row>(
      'DELETE',
      `${kind.path}/${encodeURIComponent(name)}${waitQuery(o, o.dryRun ? ['dryRun=true'] : [])}`,
    );
    done.push({ kind: kind.name, ...r });
    if (fmt === 'table')
      out(
        mutated(
          kind,
          { name, ...r },
          kind.deleteVerb ?? (o.dryRun ? 'would be deleted' : 'deleted'),
          fmt,
        ),
      );
  }
  if (fmt !== 'table') out(render(done, fmt, []));
}

async function pools(_o: Row, cmd: Command) {
  const p = await client(cmd).request<Record<string, Row>>('GET', '/pools');
  const fmt = format(cmd);
  const rows: Row[] = Object.entries(p).map(([name, u]) => ({ name, ...u }));
  out(
    fmt === 'table'
      ? table(rows, [
          { header: 'POOL', value: (r) => r.name },
          { header: 'RANGE', value: (r) => `${r.start}-${r.end}` },
          { header: 'SIZE', value: (r) => r.size },
          { header: 'USED', value: (r) => r.used },
          { header: 'FREE', value: (r) => r.free },
        ])
      : render(p, fmt, []),
  );
}

interface Fleet {
  revision: number;
  hosts: number;
  connected: number;
  inSync: number;
  behind: Row[];
  errors: number;
  drift: number;
  converged: boolean;
}

async function fleet(c: ControllerClient): Promise<Fleet> {
  const [health, hosts] = await Promise.all([
    c.request<{ revision: number }>('GET', '/health'),
    c.list<Row>('/hosts'),
  ]);
  const behind = hosts.filter(
    (h) => !h.inSync || h.agent.errors.length > 0 || h.agent.drift.length > 0,
  );
  return {
    revision: health.revision,
    hosts: hosts.length,
    connected: hosts.filter((h) => h.agent.connected).length,
    inSync: hosts.filter((h) => h.inSync).length,
    behind: behind.map((h) => ({
      name: h.name,
      connected: h.agent.connected,
      appliedRevision: h.appliedRevision,
      desiredRevision: h.desiredRevision,
      errors: h.agent.errors,
      drift: h.agent.drift,
    })),
    errors: hosts.reduce((n, h) => n + h.agent.errors.length, 0),
    drift: hosts.reduce((n, h) => n + h.agent.drift.length, 0),
    converged: behind.length === 0,
  };
}

async function status(_o: Row, cmd: Command) {
  const f = await fleet(client(cmd));
  const fmt = format(cmd);
  if (fmt !== 'table') return out(render(f, fmt, []));
  out(
    `revision ${f.revision}: ${f.hosts} hosts, ${f.connected} connected, ${f.inSync} in sync, ` +
      `${f.behind.length} behind or reporting, ${f.errors} errors, ${f.drift} drift` +
      (f.converged ? ' — converged' : ''),
  );
  if (f.behind.length > 0)
    out(
      '\n' +
        table(f.behind, [
          { header: 'HOST', value: (r) => r.name },
          { header: 'AGENT', value: (r) => (r.connected ? 'connected' : 'down') },
          { header: 'APPLIED', value: (r) => `${r.appliedRevision}/${r.desiredRevision}` },
          { header: 'ERRORS', value: (r) => r.errors.length },
          { header: 'DRIFT', value: (r) => r.drift.length },
          { header: 'FIRST', value: (r) => (r.errors[0] ?? r.drift[0])?.message?.slice(0, 80) },
        ]),
    );
}

async function trace(from: string, to: string, _o: Row, cmd: Command) {
  const o = cmd.opts<Row>();
  const q = [`from=${encodeURIComponent(from)}`, `to=${encodeURIComponent(to)}`];
  if (o.proto) q.push(`proto=${encodeURIComponent(o.proto as string)}`);
  if (o.port) q.push(`port=${encodeURIComponent(o.port as string)}`);
  const r = await client(cmd).request<Row>('GET', `/trace?${q.join('&')}`);
  const fmt = format(cmd);
  if (fmt !== 'table') return out(render(r, fmt, []));
  const hops = (r.hops ?? []) as Row[];
  out(
    table(hops, [
      { header: 'STEP', value: (h) => h.step },
      { header: 'HOST', value: (h) => h.hostName ?? h.host },
      { header: 'DETAIL', value: (h) => h.detail },
    ]),
  );
  out(`\n${r.verdict}${r.reason ? `: ${r.reason}` : ''}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `wait [revision N | <kind> <name>]`: until every connected agent applied the revision
 * (the latest, N, or the object's), or for an instance until it is active.
 */
async function wait(args: string[], _o: Row, cmd: Command) {
  const o = cmd.opts<{ timeout: string }>();
  const deadline = Date.now() + seconds(o.timeout) * 1000;
  const c = client(cmd);
  let target: number | undefined;
  let what: string;
  let instance: string | undefined;
  if (args.length === 0) {
    target = (await c.request<{ revision: number }>('GET', '/health')).revision;
    what = `revision ${target}`;
  } else if (args[0] === 'revision') {
    if (args.length !== 2 || !/^\d+$/.test(args[1]))
      throw new Usage('wait revision needs one revision number');
    target = Number(args[1]);
    what = `revision ${target}`;
  } else {
    if (args.length !== 2)
      throw new Usage('wait needs nothing, `revision N`, or a kind and a name');
    const kind = needKind(args[0]);
    const obj = await c.request<Row>('GET', `${kind.path}/${encodeURIComponent(args[1])}`);
    what = `${kind.name}/${obj.name}`;
    if (kind.name === 'instance') instance = obj.id;
    else target = obj.revision;
  }
  for (;;) {
    let lagging: string[];
    if (instance !== undefined) {
      const i = await c.request<Row>('GET', `/instances/${instance}`);
      lagging = i.state === 'active' ? [] : [i.host];
    } else {
      const hosts = await c.list<Row>('/hosts');
      lagging = hosts
        .filter(
          (h) => h.agent.connected && h.appliedRevision < Math.min(target!, h.desiredRevision),
        )
        .map((h) => h.name);
    }
    if (lagging.length === 0) {
      out(`${what} applied`);
      return;
    }
    if (Date.now() >= deadline) {
      process.stderr.write(
        `latticectl: timed out waiting for ${what}: not applied yet by ${lagging.slice(0, 20).join(', ')}` +
          (lagging.length > 20 ? ` and ${lagging.length - 20} more` : '') +
          '\n',
      );
      process.exitCode = EXIT.timeout;
      return;
    }
    await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
  }
}

function configCmd(program: Command): Command {
  const config = new Command('config').description(
    'show or write the config file (server and token)',
  );
  config
    .command('view')
    .description('the settings in force and where each comes from (the token masked)')
    .addOption(outputOption())
    .action((_o: Row, cmd: Command) => {
      const s = resolveSettings(cmd.optsWithGlobals());
      const view = {
        server: s.server,
        serverFrom: s.sources.server,
        token: s.token ? `${s.token.slice(0, 6)}…` : null,
        tokenFrom: s.sources.token,
        configFile: s.configFile,
      };
      const fmt = format(cmd);
      out(fmt === 'table' ? describeBlock(view) : render(view, fmt, []));
    });
  config
    .command('set')
    .description('write --server and/or --token into the config file (mode 0600)')
    .action((_o: Row, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ server?: string; token?: string; config?: string }>();
      if (g.server === undefined && g.token === undefined)
        throw new Usage('config set needs --server URL and/or --token TOKEN');
      const file = configPath(g.config, process.env);
      const next = writeConfig(file, { server: g.server, token: g.token });
      out(`wrote ${file}: ${Object.keys(next).join(', ')}`);
    });
  config
    .command('path')
    .description('the config file used')
    .action((_o: Row, cmd: Command) => out(configPath(cmd.optsWithGlobals().config, process.env)));
  program.addCommand(config);
  return config;
}

export function buildProgram(): Command {
  const program = new Command('latticectl')
    .description(
      'Operate a Lattice controller: hosts, networks, instances, routers, policies, join tokens',
    )
    .version(`latticectl ${programVersion()}`, '-V, --version')
    .option('-s, --server <url>', 'the controller (env LATTICE_URL; default http://127.0.0.1:8080)')
    .option('--token <token>', 'API token (env LATTICE_TOKEN or LATTICE_ADMIN_TOKEN)')
    .option('--config <file>', 'config file (env LATTICE_CONFIG; default ~/.config/lattice/config)')
    .showHelpAfterError('(latticectl --help for usage)')
    .addHelpText(
      'after',
      `
Kinds: ${KINDS.map((k) => `${k.plural} (${[k.name, ...k.aliases].join(', ')})`).join('; ')}

Exit codes: 0 done, 1 refused by the controller, 2 usage, 3 controller unreachable,
4 not found, 5 conflict, 6 wait timed out, 7 not authorised.`,
    );

  const mutationOptions = (c: Command) =>
    c
      .option('--wait', 'answer once every affected agent applied it (?wait=applied)')
      .option('--timeout <seconds>', 'with --wait: give up after this long (504, exit 6)')
      .option('--dry-run', 'policies: preview, commit nothing (?dryRun=true)')
      .addOption(outputOption());

  program
    .command('get')
    .description('list objects of a kind, or show the named ones')
    .argument('<kind>', 'hosts, networks, instances, routers, policies, join-tokens')
    .argument('[names...]', 'names or ids')
    .option('--network <network>', 'instances of this network')
    .option('--host <host>', 'instances on this host')
    .option('--label <key=value>', 'instances with this label')
    .option('--model <model>', 'networks of this model')
    .addOption(outputOption())
    .action(get);

  program
    .command('describe')
    .description(
      'one object in full, with what relates to it (a host: its desired state and instances)',
    )
    .argument('<kind>')
    .argument('<name>')
    .addOption(outputOption())
    .action(describe);

  mutationOptions(
    program
      .command('create')
      .description(
        'create an object from flags, or every object of a YAML/JSON file (-f) in dependency order',
      )
      .argument('[kind]')
      .argument('[name]')
      .option(
        '-f, --file <file>',
        'YAML (several documents) or JSON objects, each with "kind" and "name"; - for stdin',
      )
      .option('-d, --data <json>', 'more fields of the body, as a JSON object')
      .option('--underlay-ip <ip>', 'host')
      .option('--uplink <ifname>', 'host')
      .option('--asn <asn>', 'host')
      .option('--label <key=value>', 'host, instance, join-token (repeatable)', collect)
      .option('--model <model>', 'network: bridge, vlan, routed, overlay, fabric')
      .option('--cidr <cidr>', 'network')
      .option('--gateway <ip>', 'network')
      .option('--mtu <n>', 'network')
      .option('--vlan-id <n>', 'network')
      .option('--vni <n>', 'network')
      .option('--encapsulation <e>', 'network: vxlan, ipip, gre')
      .option('--routing <r>', 'network: static, bgp')
      .option('--block-prefix-len <n>', 'network')
      .option('--transport <t>', 'network (fabric)')
      .option('--network <network>', 'instance; router (repeatable)', collect)
      .option('--host <host>', 'instance')
      .option('--ip <ip>', 'instance')
      .option('--mac <mac>', 'instance')
      .option('--ttl <seconds>', 'join-token')
      .option('--max-uses <n>', 'join-token')
      .option('--allow-rejoin', 'join-token')
      .option('--description <text>', 'join-token'),
  ).action(create);

  mutationOptions(
    program
      .command('patch')
      .description('change an object')
      .argument('<kind>')
      .argument('<name>')
      .option('-d, --data <json>', 'the fields to change, as a JSON object')
      .option('--underlay-ip <ip>', 'host')
      .option('--uplink <ifname>', 'host')
      .option('--asn <asn>', 'host ("default" for the default ASN)')
      .option('--label <key=value>', 'host, instance: the whole new set (repeatable)', collect)
      .option('--host <host>', 'instance: move it')
      .option('--network <network>', 'router: the whole new set (repeatable)', collect)
      .option('--attach <network>', 'router (repeatable)', collect)
      .option('--detach <network>', 'router (repeatable)', collect),
  ).action(patch);

  mutationOptions(
    program
      .command('delete')
      .description(
        'delete the named objects (join tokens: revoke), or those of a file (-f) in reverse order',
      )
      .argument('[kind]')
      .argument('[names...]')
      .option('-f, --file <file>', 'the objects of this file (as for create)'),
  ).action(del);

  program
    .command('pools')
    .description('VLAN and VNI pools: range, used, free')
    .addOption(outputOption())
    .action(pools);

  program
    .command('status')
    .description('fleet convergence: hosts behind, errors, drift')
    .addOption(outputOption())
    .action(status);

  program
    .command('trace')
    .description('trace a packet through the desired state, hop by hop')
    .argument('<from>', 'source instance')
    .argument('<to>', 'destination instance or IPv4 address')
    .option('--proto <proto>', 'icmp, tcp or udp')
    .option('--port <port>', 'destination port (tcp, udp)')
    .addOption(outputOption())
    .action(trace);

  program
    .command('wait')
    .description(
      'until the latest revision, `revision N`, or an object (`instance web1`) is applied',
    )
    .argument('[what...]')
    .option('--timeout <seconds>', 'give up after this long (exit 6)', '60')
    .action(wait);

  configCmd(program);

  program
    .command('completion')
    .description('a completion script: `source <(latticectl completion bash)`, or zsh')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new Usage('completion: bash or zsh');
      out(completion(program, shell, KIND_WORDS));
    });

  return program;
}

function exitFor(e: unknown): number {
  if (e instanceof Usage || e instanceof ConfigProblem) return EXIT.usage;
  if (e instanceof UnreachableError) return EXIT.unreachable;
  if (e instanceof ApiError) {
    if (e.status === 404) return EXIT.notFound;
    if (e.status === 409) return EXIT.conflict;
    if (e.status === 504) return EXIT.timeout;
    if (e.status === 401 || e.status === 403) return EXIT.unauthorised;
    return EXIT.refused;
  }
  return EXIT.refused;
}

async function main(): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  for (const c of program.commands) c.exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here too, with code 0
      process.exitCode = e.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    const message =
      e instanceof ApiError ? e.apiMessage : e instanceof Error ? e.message : String(e);
    process.stderr.write(`latticectl: ${message}\n`);
    process.exitCode = exitFor(e);
  }
}

await main();
