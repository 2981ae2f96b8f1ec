/**
 * Bounding what an agent reports (`status.errors`, `drift.items`): the agent sends no more
 * than `REPORT_LIMITS`, and the controller stores no more, whatever a host's failure.
 */
import { REPORT_LIMITS } from './messages.js';

/** What a reported entry has at least: a resource key and a message for humans. */
export interface ReportEntry {
  readonly key: string;
  readonly message: string;
}

/** The key of the summary entry that stands for the entries left out. */
export const REPORT_SUMMARY_KEY = '*';

/**
 * At most `limits.errors` entries, each message at most `limits.messageChars` characters
 * (cut ones end in `…`). When there are more, the first `limits.errors - 1` are kept and
 * one summary entry `{ key: '*', message: 'N more errors not shown', ...summary }` ends
 * the list (`summary` holds the entry's other fields, e.g. `{ repaired: false }` for
 * drift). Pure: returns a new array, and the entries themselves when nothing is cut.
 */
export function boundReport<T extends ReportEntry>(
  entries: readonly T[],
  summary: Omit<T, keyof ReportEntry>,
  limits: { readonly errors: number; readonly messageChars: number } = REPORT_LIMITS,
): T[] {
  const max = Math.max(1, limits.errors);
  const cut = (e: T): T =>
    e.message.length <= limits.messageChars
      ? e
      : { ...e, message: cutMessage(e.message, limits.messageChars) };
  if (entries.length <= max) return entries.map(cut);
  const kept = entries.slice(0, max - 1).map(cut);
  const hidden = entries.length - kept.length;
  kept.push({
    ...summary,
    key: REPORT_SUMMARY_KEY,
    message: cutMessage(`${hidden} more errors not shown`, limits.messageChars),
  } as unknown as T);
  return kept;
}

function cutMessage(message: string, chars: number): string {
  if (message.length <= chars) return message;
  if (chars <= 0) return '';
  let head = message.slice(0, chars - 1);
  // Never leave half of a surrogate pair behind.
  const last = head.charCodeAt(head.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1);
  return `${head}…`;
}
