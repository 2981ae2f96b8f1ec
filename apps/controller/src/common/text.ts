/**
 * Text the database can store. PostgreSQL refuses a NUL character in `text` (and in every
 * type read from text: `inet`, `uuid`, ...) with an error, and the driver silently turns an
 * unpaired UTF-16 surrogate into U+FFFD, so a value holding either would be a 500 or a
 * different value than the one sent. Every string of a request is checked against this
 * before it reaches a service (`input-pipe.ts`), and refused naming its field.
 */
import type { FieldError } from './errors.js';

const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** False for a string holding a NUL character or an unpaired surrogate. */
export function isStorableText(s: string): boolean {
  return !UNSTORABLE.test(s);
}

/** The one message for a field holding such text. */
export const textMessage = (field: string): string =>
  `${field} must be valid Unicode text without NUL characters (U+0000)`;

/** Arrays and objects nested deeper than this are refused before anything walks them. */
export const MAX_DEPTH = 16;

/**
 * Keys that reach an object's prototype rather than a property: `__proto__` would be
 * dropped without a word, and class-transformer throws on `constructor` inside a nested
 * plain object (a 500). Refused wherever they appear.
 */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor']);

/** At most this many problems are listed: a 400 stays small whatever was sent. */
const MAX_PROBLEMS = 50;

/** `a.b`, `a[0]`, as `flattenValidationErrors` names nested fields. */
function join(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

/** A key as a field name shows it: as it is, or JSON-escaped when it is not storable text. */
export function shownKey(key: string): string {
  return isStorableText(key) ? key : JSON.stringify(key).slice(1, -1);
}

export interface InputScan {
  /** Fields holding (or keyed by) text PostgreSQL cannot store, and prototype keys. */
  problems: FieldError[];
  /** The first field at which arrays and objects nest deeper than `MAX_DEPTH`. */
  tooDeep?: string;
}

/**
 * Walks a parsed body or query (iteratively: a deeply nested body cannot exhaust the stack)
 * and names every string value or key PostgreSQL cannot store, and every key that would
 * set a prototype; stops at the first place nested deeper than `MAX_DEPTH`.
 * `root` names the value itself when it is a string (a single query or path parameter).
 */
export function scanInput(value: unknown, root = ''): InputScan {
  const problems: FieldError[] = [];
  const add = (field: string, error: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ field, errors: [error] });
  };
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: value, path: root, depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (typeof v === 'string') {
      if (!isStorableText(v)) add(path || 'body', textMessage(path || 'body'));
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_DEPTH) return { problems, tooDeep: path || 'body' };
    const children: { v: unknown; path: string; depth: number }[] = [];
    if (Array.isArray(v)) {
      v.forEach((item, i) => children.push({ v: item, path: join(path, i), depth: depth + 1 }));
    } else {
      for (const key of Object.keys(v)) {
        const field = join(path, shownKey(key));
        if (!isStorableText(key)) {
          add(
            field,
            `${path || 'the body'} has a key that is not valid Unicode text or holds a NUL`,
          );
          continue;
        }
        if (PROTOTYPE_KEYS.has(key)) {
          add(field, `${key} is not accepted as a key: it names an object's prototype`);
          continue;
        }
        children.push({ v: (v as Record<string, unknown>)[key], path: field, depth: depth + 1 });
      }
    }
    // Reversed, so that fields are named in the order they were sent.
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return { problems };
}
