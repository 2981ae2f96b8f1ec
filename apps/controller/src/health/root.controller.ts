import { Controller, Get, Header, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Public } from '../auth/auth.guard.js';
import { packageRoot, programVersion } from '../../../../libs/version/src/index.js';

export const VERSION = programVersion();
const PACKAGE_ROOT = packageRoot();

/**
 * The built dashboard (`npm run build` writes it from web/): `index.html` and its assets
 * under `ui/`, served at `/ui/` (app.ts). Undefined when it was not built: `/` then
 * answers the page of links alone.
 */
export const DASHBOARD_DIR = ((): string | undefined => {
  const dir = PACKAGE_ROOT && join(PACKAGE_ROOT, 'dist', 'web');
  return dir && existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'ui', 'app.js'))
    ? dir
    : undefined;
})();

const LINKS = {
  api: { href: '/api/v1', title: 'REST API (every call but /health needs a bearer token)' },
  docs: { href: '/api/docs', title: 'API documentation (Swagger UI)' },
  openapi: { href: '/api/docs-json', title: 'OpenAPI 3.0 document' },
  health: { href: '/api/v1/health', title: 'Liveness and database reachability (no token)' },
  metrics: { href: '/api/v1/metrics', title: 'Prometheus metrics (bearer token)' },
} as const;

export interface RootView {
  name: 'Lattice';
  description: string;
  version: string;
  links: Record<keyof typeof LINKS, { href: string; title: string }>;
}

const ROOT: RootView = {
  name: 'Lattice',
  description: 'SDN controller for virtual networks',
  version: VERSION,
  links: LINKS,
};

/** The quality (`q`) the Accept header gives a media type, wildcards included (RFC 9110). */
export function acceptQuality(accept: string, type: string): number {
  const [major] = type.split('/');
  let best = -1;
  let q = 0;
  for (const part of accept.split(',')) {
    const [range, ...params] = part.trim().toLowerCase().split(';');
    const specificity =
      range === type ? 2 : range === `${major}/*` ? 1 : range === '*/*' ? 0 : undefined;
    if (specificity === undefined || specificity < best) continue;
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const value = qp ? Number(qp.slice(2)) : 1;
    best = specificity;
    q = Number.isFinite(value) ? value : 0;
  }
  return q;
}

const escape = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function linkItems(v: RootView, indent: string): string {
  // The API's base answers nothing by itself (and needs a token): named, not linked.
  return Object.entries(v.links)
    .map(([key, l]) => {
      const code = `<code>${escape(l.href)}</code>`;
      const target = key === 'api' ? code : `<a href="${escape(l.href)}">${code}</a>`;
      return `<li>${target} — ${escape(l.title)}</li>`;
    })
    .join(`\n${indent}`);
}

/** The dashboard's index.html with the name, version and links filled in (read once). */
let dashboardPage: string | undefined;
function dashboard(v: RootView): string | undefined {
  if (!DASHBOARD_DIR) return undefined;
  dashboardPage ??= readFileSync(join(DASHBOARD_DIR, 'index.html'), 'utf8')
    .replaceAll('{{description}}', escape(v.description))
    .replaceAll('{{version}}', escape(v.version))
    .replaceAll('{{links}}', linkItems(v, '        '));
  return dashboardPage;
}

function page(v: RootView): string {
  const items = linkItems(v, '      ');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Lattice ${escape(v.version)}</title>
    <style>
      body { font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
      h1 { margin-bottom: 0; } .sub { color: #666; margin-top: 0; } li { margin: .4rem 0; }
    </style>
  </head>
  <body>
    <h1>Lattice</h1>
    <p class="sub">${escape(v.description)} · version ${escape(v.version)}</p>
    <ul>
      ${items}
    </ul>
  </body>
</html>
`;
}

/**
 * `GET /`, outside the API prefix and the OpenAPI document: what this server is and where
 * its API and documents are. JSON by default (curl, scripts, `Accept: application/json`);
 * to a client that prefers `text/html` (a browser), the dashboard (web/, built into
 * dist/web), whose shell names Lattice and links the same documents. Needs no token: the
 * dashboard asks for one and keeps it in sessionStorage.
 */
@ApiExcludeController()
@Controller()
export class RootController {
  @Public()
  @Get()
  @Header('vary', 'Accept')
  @Header('cache-control', 'no-cache')
  root(@Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    const accept = req.headers.accept ?? '*/*';
    if (acceptQuality(accept, 'text/html') > acceptQuality(accept, 'application/json')) {
      void reply.type('text/html; charset=utf-8');
      return dashboard(ROOT) ?? page(ROOT);
    }
    return ROOT;
  }
}
