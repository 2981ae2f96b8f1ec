/**
 * The REST client of Lattice's tools (`latticectl`, the lab): `/api/v1` with a bearer
 * token, errors as `ApiError` carrying the API's own message.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    what: string,
  ) {
    super(`${what}: HTTP ${status}: ${apiMessage(body)}`);
  }

  /** The API's message, with the offending fields of a 400. */
  get apiMessage(): string {
    return apiMessage(this.body);
  }
}

function apiMessage(body: unknown): string {
  if (typeof body !== 'object' || body === null || !('message' in body))
    return typeof body === 'string' ? body : JSON.stringify(body);
  const b = body as { message: unknown; details?: unknown };
  const details = Array.isArray(b.details)
    ? (b.details as { field?: string; errors?: string[] }[])
        .filter((d) => d.field !== undefined)
        .map((d) => `${d.field}: ${(d.errors ?? []).join(', ')}`)
    : [];
  return details.length > 0 ? `${String(b.message)} (${details.join('; ')})` : String(b.message);
}

/** The controller could not be reached (no answer, refused, timed out). */
export class UnreachableError extends Error {}

export class ControllerClient {
  constructor(
    readonly url: string,
    private readonly token: string | undefined,
    private readonly timeoutMs = 60_000,
  ) {}

  /** The agents' WebSocket endpoint on the same controller. */
  get agentUrl(): string {
    return `${this.url.replace(/^http/, 'ws')}/agent`;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.url}/api/v1${path}`, {
        method,
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const cause =
        e instanceof Error && e.cause instanceof Error
          ? ` (${e.cause.message})`
          : e instanceof Error && e.name === 'TimeoutError'
            ? ` (no answer within ${this.timeoutMs} ms)`
            : '';
      throw new UnreachableError(
        `cannot reach the controller at ${this.url}${cause}: is it running (\`npm start\`)? ` +
          `Set LATTICE_URL (or --server) to point elsewhere.`,
      );
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // keep the text
    }
    if (!res.ok) throw new ApiError(res.status, parsed, `${method} /api/v1${path}`);
    return parsed as T;
  }

  /** Every page of a list endpoint. */
  async list<T>(path: string): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const q: string = `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page: { items: T[]; nextCursor: string | null } = await this.request('GET', q);
      out.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  }
}
