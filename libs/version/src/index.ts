/**
 * The version of Lattice a program was built from, for `--version`: the `version` of the
 * repository's package.json (name "lattice"), found by walking up from this module, so it
 * works from the sources (libs/version/src/) and from the build (dist/libs/version/src/),
 * in a checkout, an installed package and the Docker images (which keep package.json).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The version found from `from` (a file: URL or path; default: this module), or undefined. */
export function findVersion(from: string | URL = import.meta.url): string | undefined {
  const start = typeof from === 'string' && !from.startsWith('file:') ? from : fileURLToPath(from);
  let dir = dirname(start);
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === 'lattice' && typeof pkg.version === 'string') return pkg.version;
      } catch {
        // unreadable or not JSON: not ours, keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

let cached: string | undefined;

/** Lattice's version (package.json), or `unknown` when no package.json named "lattice" is found. */
export function programVersion(): string {
  cached ??= findVersion() ?? 'unknown';
  return cached;
}
