/**
 * Running commands, and attributing batch failures to lines.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `argv` (no shell) with `input` on stdin. Never rejects for a non-zero exit: the
 * caller reads `code`. A missing binary is reported as code 127, like a shell would.
 */
export type CommandRunner = (argv: readonly string[], input?: string) => Promise<CommandResult>;

export const spawnRunner: CommandRunner = (argv, input) =>
  new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ code: e.code === 'ENOENT' ? 127 : 1, stdout: '', stderr: e.message }),
    );
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    );
    // A child that exits before reading stdin must not crash us with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });

/** Outcome of one `-force -batch`: errors by 0-based line, and whether it stopped early. */
export interface BatchOutcome {
  readonly failed: ReadonlyMap<number, string>;
  /** Error text not followed by `Command failed`: the tool exited in the middle. */
  readonly aborted: string | null;
}

/**
 * Parses the stderr of `ip|bridge -force -batch -`. Each failing line prints its error
 * then `Command failed -:<line>`. Some argument errors (an unknown `master` device, a bad
 * address) make iproute2 exit at once even with `-force`: that leaves trailing text with
 * no `Command failed`, and no way to know which lines ran.
 */
export function parseBatchErrors(stderr: string, code: number): BatchOutcome {
  const failed = new Map<number, string>();
  let pending: string[] = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^Command failed (?:-|\S+):(\d+)$/.exec(line);
    if (m) {
      failed.set(Number(m[1]) - 1, pending.join(' ') || 'failed');
      pending = [];
    } else {
      pending.push(line);
    }
  }
  let aborted: string | null = null;
  if (code !== 0 && pending.length > 0) aborted = pending.join(' ');
  else if (code !== 0 && failed.size === 0) aborted = `exit code ${code}`;
  return { failed, aborted };
}

/** Splits the output of `ip -j -batch -` (one JSON document per command, per line). */
export function parseJsonLines(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as unknown);
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
