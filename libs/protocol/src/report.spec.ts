import { describe, expect, it } from '@jest/globals';
import { REPORT_LIMITS } from './messages.js';
import { parseAgentFrame } from './parse.js';
import { boundReport, REPORT_SUMMARY_KEY } from './report.js';

const errors = (n: number, message = 'boom') =>
  Array.from({ length: n }, (_, i) => ({ key: `route:10.0.${i}.0/24`, message }));

describe('boundReport', () => {
  it('leaves a report within the limits as it is', () => {
    const e = errors(REPORT_LIMITS.errors);
    const out = boundReport(e, {});
    expect(out).toEqual(e);
    expect(out).not.toBe(e);
    expect(boundReport([], {})).toEqual([]);
  });

  it('keeps the first entries and ends with one summary entry', () => {
    const e = errors(REPORT_LIMITS.errors + 1);
    const out = boundReport(e, {});
    expect(out).toHaveLength(REPORT_LIMITS.errors);
    expect(out.slice(0, -1)).toEqual(e.slice(0, REPORT_LIMITS.errors - 1));
    expect(out.at(-1)).toEqual({ key: REPORT_SUMMARY_KEY, message: '2 more errors not shown' });
    expect(boundReport(errors(5000), {}).at(-1)).toEqual({
      key: '*',
      message: `${5000 - REPORT_LIMITS.errors + 1} more errors not shown`,
    });
  });

  it('gives the summary the other fields of the entry type (drift: repaired)', () => {
    const items = errors(250).map((e) => ({ ...e, repaired: true }));
    const out = boundReport(items, { repaired: false });
    expect(out).toHaveLength(100);
    expect(out.at(-1)).toEqual({ key: '*', message: '151 more errors not shown', repaired: false });
    expect(out[0].repaired).toBe(true);
  });

  it('cuts long messages to messageChars, without splitting a character', () => {
    const long = 'x'.repeat(REPORT_LIMITS.messageChars * 3);
    const [a, b] = boundReport(
      [
        { key: 'a:1', message: long },
        { key: 'b:1', message: 'short' },
      ],
      {},
    );
    expect(a.message).toHaveLength(REPORT_LIMITS.messageChars);
    expect(a.message.endsWith('…')).toBe(true);
    expect(b.message).toBe('short');
    // exactly at the limit: untouched
    const exact = 'y'.repeat(REPORT_LIMITS.messageChars);
    expect(boundReport([{ key: 'c:1', message: exact }], {})[0].message).toBe(exact);
    // a surrogate pair straddling the cut is dropped whole
    const emoji = boundReport(
      [{ key: 'd:1', message: 'ab😀cd' }],
      {},
      { errors: 10, messageChars: 4 },
    );
    expect(emoji[0].message).toBe('ab…');
  });

  it('honours other limits and does not change its input', () => {
    const e = errors(10, 'abcdef');
    const copy = structuredClone(e);
    const out = boundReport(e, {}, { errors: 3, messageChars: 4 });
    expect(out).toEqual([
      { key: e[0].key, message: 'abc…' },
      { key: e[1].key, message: 'abc…' },
      { key: '*', message: '8 m…' },
    ]);
    expect(e).toEqual(copy);
  });

  it('produces frames the protocol accepts', () => {
    const f = {
      v: 1,
      type: 'status',
      revision: 3,
      errors: boundReport(errors(1000, 'z'.repeat(5000)), {}),
    };
    expect(parseAgentFrame(JSON.stringify(f)).ok).toBe(true);
    const d = {
      v: 1,
      type: 'drift',
      revision: 3,
      items: boundReport(
        errors(1000).map((x) => ({ ...x, repaired: true })),
        { repaired: false },
      ),
    };
    expect(parseAgentFrame(JSON.stringify(d)).ok).toBe(true);
  });
});
