// Builds the dashboard (web/src) into dist/web: index.html and ui/ (one script, one style
// sheet), served by the controller at / and /ui/. No network access at run time.
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'dist', 'web');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'ui'), { recursive: true });
await build({
  entryPoints: { app: join(here, 'src', 'main.tsx') },
  outdir: join(out, 'ui'),
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  loader: { '.css': 'css' },
  logLevel: 'warning',
  legalComments: 'linked',
});
cpSync(join(here, 'index.html'), join(out, 'index.html'));
