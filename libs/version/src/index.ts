/**
 * The version of Lattice a program was built from, for `--version`: the `version` of the
 * repository's package.json (name "lattice"), found by walking up from this module, so it
 * works from the sources (libs/version/src/) and from the build (dist/libs/version/src/),
 * in a checkout, an installed package and the Docker images (which keep package.json).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder and version of the package.json named "lattice" at or above `from` (a file:
 * URL or path; default: this module), or undefined.
 */
export function findPackage(
  from: string | URL = import.meta.url,
): { root: string; version: string } | undefined {
  const start = typeof from === 'string' && !from.startsWith('file:') ? from : fileURLToPath(from);
  let dir = dirname(start);
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === 'lattice' && typeof pkg.version === 'string')
          return { root: dir, version: pkg.version };
      } catch {
        // unreadable or not JSON: not ours, keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The version found from `from`, or undefined. */
export function findVersion(from?: string | URL): string | undefined {
  return findPackage(from)?.version;
}

let cached: { root: string; version: string } | undefined | null = null;
const ours = () => (cached === null ? (cached = findPackage()) : cached);

/** Lattice's version (package.json), or `unknown` when no package.json named "lattice" is found. */
export function programVersion(): string {
  return ours()?.version ?? 'unknown';
}

/** The repository (or installed package) folder, where package.json and dist/ are. */
export function packageRoot(): string | undefined {
  return ours()?.root;
}
