import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findVersion, programVersion } from './index.js';

const tmp = mkdtempSync(join(tmpdir(), 'lattice-version-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('programVersion', () => {
  it("is the repository's package.json version", () => {
    const pkg = JSON.parse(
      readFileSync(join(import.meta.dirname, '../../../package.json'), 'utf8'),
    );
    expect(programVersion()).toBe(pkg.version);
  });

  it('walks up past package.json files of other names and broken ones', () => {
    const root = join(tmp, 'a');
    mkdirSync(join(root, 'b', 'c', 'd'), { recursive: true });
    writeFileSync(
      join(root, 'package.json'),
      JSON.stringify({ name: 'lattice', version: '9.8.7' }),
    );
    writeFileSync(
      join(root, 'b', 'package.json'),
      JSON.stringify({ name: 'other', version: '1.0.0' }),
    );
    writeFileSync(join(root, 'b', 'c', 'package.json'), '{ not json');
    const from = join(root, 'b', 'c', 'd', 'main.js');
    expect(findVersion(pathToFileURL(from).href)).toBe('9.8.7');
    expect(findVersion(from)).toBe('9.8.7');
    expect(findVersion(pathToFileURL(from))).toBe('9.8.7');
  });

  it('is undefined when no package.json named lattice is above', () => {
    mkdirSync(join(tmp, 'x'), { recursive: true });
    expect(findVersion(join(tmp, 'x', 'main.js'))).toBeUndefined();
  });
});
