/**
 * Running iproute2 and friends for the lab: no shell, stdin for `-batch -`, never rejects
 * for a non-zero exit (callers read `code`, or use `must`).
 */
import { spawnRunner, type CommandResult } from '../../apps/agent/src/dataplane/linux/commands.js';

/** The agent's own runner: no shell, stdin for `-batch -`, ENOENT as exit 127. */
export type Result = CommandResult;
export const run = spawnRunner;

/** Like `run`, but a non-zero exit is an error naming the command and its stderr. */
export async function must(argv: readonly string[], input?: string): Promise<string> {
  const r = await run(argv, input);
  if (r.code !== 0) {
    const what = input ? `${argv.join(' ')} <<EOF\n${input}EOF` : argv.join(' ');
    throw new Error(`command failed (exit ${r.code}): ${what}\n${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout;
}

/** Runs `ip [-n ns] -batch -` with the given lines; stops at the first error (no -force). */
export async function ipBatch(ns: string | null, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  await must(ns ? ['ip', '-n', ns, '-batch', '-'] : ['ip', '-batch', '-'], lines.join('\n') + '\n');
}

/** Named network namespaces (`ip netns list`, ids stripped). */
export async function listNetns(): Promise<string[]> {
  const out = await must(['ip', 'netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n) => n.length > 0);
}

/** Device names in a namespace. */
export async function listLinks(ns: string): Promise<Set<string>> {
  const out = await must(['ip', '-n', ns, '-j', 'link', 'show']);
  const links = JSON.parse(out || '[]') as { ifname: string }[];
  return new Set(links.map((l) => l.ifname));
}

/**
 * Whether this process may create network namespaces: creates and deletes one probe
 * namespace. Returns null when it can, else the reason.
 */
export async function netnsUnavailable(probeName: string): Promise<string | null> {
  const add = await run(['ip', 'netns', 'add', probeName]);
  if (add.code !== 0) {
    return add.code === 127
      ? 'iproute2 (`ip`) is not installed'
      : `\`ip netns add\` fails as this user (needs root or CAP_SYS_ADMIN + CAP_NET_ADMIN): ${add.stderr.trim()}`;
  }
  const veth = await run([
    'ip',
    '-n',
    probeName,
    'link',
    'add',
    'name',
    'probe0',
    'type',
    'veth',
    'peer',
    'name',
    'probe1',
  ]);
  await run(['ip', 'netns', 'del', probeName]);
  if (veth.code !== 0) return `cannot create veth pairs: ${veth.stderr.trim()}`;
  return null;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
