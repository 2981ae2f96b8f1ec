/**
 * The HTTP rules Fastify applies before a request reaches a route (installed in app.ts):
 * which bodies are read, what a wrong method or a malformed path answers. Each answer has
 * the API's one error body (`common/errors.ts`).
 *
 * - Bodies are read only as `application/json`, decoded as strict UTF-8: any other content
 *   type is a 415 (Fastify's default `text/plain` parser is removed, so text never reaches
 *   the validators as if it were a body), invalid UTF-8 or JSON a 400. An empty JSON body
 *   means "no body" (clients send the header on a DELETE without one).
 * - A method a path does not have is a 405 with `Allow` listing those it has; a path no
 *   route has stays a 404.
 * - A path that is not valid percent-encoded UTF-8, or with a segment longer than any id
 *   or name, names nothing: 404 (not Fastify's own 400/414 bodies).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorBody } from './errors.js';

/** JSON is UTF-8 (RFC 8259): a byte sequence that is not is refused, not replaced. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

const badRequest = (message: string) =>
  Object.assign(new Error(message), { statusCode: 400, code: 'LATTICE_BAD_BODY' });

/** The `application/json` parser: strict UTF-8, empty means no body. */
function parseJson(
  _req: FastifyRequest,
  body: Buffer | string,
  done: (err: Error | null, body?: unknown) => void,
): void {
  let text: string;
  try {
    text = typeof body === 'string' ? body : utf8.decode(body);
  } catch {
    done(badRequest('the body is not valid UTF-8'), undefined);
    return;
  }
  if (text.trim() === '') {
    done(null, undefined);
    return;
  }
  try {
    done(null, JSON.parse(text));
  } catch {
    done(badRequest('the body is not valid JSON'), undefined);
  }
}

/** The routes registered, by path pattern, for answering 405 with `Allow`. */
export class RouteTable {
  private readonly routes = new Map<string, { match: RegExp; methods: Set<string> }>();

  add(methods: string | string[], url: string): void {
    let route = this.routes.get(url);
    if (!route) {
      const pattern = url
        .split('/')
        .map((s) =>
          s === '*' ? '.*' : s.startsWith(':') ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
        )
        .join('/');
      route = { match: new RegExp(`^${pattern}$`), methods: new Set() };
      this.routes.set(url, route);
    }
    for (const m of Array.isArray(methods) ? methods : [methods]) route.methods.add(m);
  }

  /** The methods `path` has (GET implies HEAD), sorted; empty when no route has the path. */
  allowed(path: string): string[] {
    const methods = new Set<string>();
    for (const { match, methods: ms } of this.routes.values()) {
      if (match.test(path)) for (const m of ms) methods.add(m);
    }
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  }
}

function sendError(reply: FastifyReply, body: ErrorBody): void {
  void reply.code(body.statusCode).header('content-type', 'application/json').send(body);
}

/**
 * Installs the body parser and the 405 rule on the application's Fastify instance. Call
 * before the routes are registered (before `app.init()`), so that every route is known.
 */
export function installHttpRules(fastify: FastifyInstance): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, parseJson);

  const routes = new RouteTable();
  fastify.addHook('onRoute', (r) => routes.add(r.method, r.url));
  // Runs before the body is read, so a wrong method is a 405 whatever it carries.
  fastify.addHook('onRequest', (req, reply, done) => {
    if (!req.is404) return done();
    const path = req.url.split('?')[0];
    const allow = routes.allowed(path);
    if (allow.length === 0) return done();
    void reply.header('allow', allow.join(', '));
    sendError(reply, {
      statusCode: 405,
      error: 'Method Not Allowed',
      message: `${req.method} is not allowed on ${path}: it has ${allow.join(', ')}`,
    });
  });
}

/**
 * Fastify's `frameworkErrors`: what its router refuses before any route or hook runs. A
 * path that is not valid percent-encoded UTF-8, or has a segment longer than any id or
 * name (`maxParamLength`), can name nothing: 404.
 */
export function frameworkErrors(
  error: Error & { code?: string; statusCode?: number },
  _req: FastifyRequest,
  reply: FastifyReply,
): void {
  if (error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    sendError(reply, {
      statusCode: 404,
      error: 'Not Found',
      message:
        error.code === 'FST_ERR_BAD_URL'
          ? 'the path is not valid percent-encoded UTF-8: it names nothing'
          : 'a segment of the path is longer than any id or name: it names nothing',
    });
    return;
  }
  void reply.send(error);
}
