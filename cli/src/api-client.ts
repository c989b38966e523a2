import type { Credentials } from './credentials.js';
import { CliError, EXIT } from './exit-codes.js';

/** A request to the API: JSON in and out, or a YAML body (a manifest). */
export interface ApiRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  yaml?: string;
}

/** The API as `pds` calls it: its answers, or a CliError a person can act on (with the exit code it means). */
export class ApiClient {
  constructor(private readonly credentials: Credentials) {}

  async call<T>(path: string, request: ApiRequest = {}): Promise<T> {
    const { url, token } = this.credentials;
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    let body: string | undefined;
    if (request.yaml !== undefined) {
      headers['content-type'] = 'application/yaml';
      body = request.yaml;
    } else if (request.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(request.body);
    }
    let response: Response;
    try {
      // No redirect followed: one would drop the token (or send it elsewhere) and turn a POST into a GET.
      response = await fetch(`${url}${path}`, {
        method: request.method ?? 'GET',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the API at ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, EXIT.failed);
    }
    if (response.status >= 300 && response.status < 400)
      throw new CliError(
        `the API at ${url} redirects to ${response.headers.get('location') ?? '?'}: log in with that address`,
        EXIT.usage,
        response.status,
      );
    const text = await response.text();
    if (response.ok) {
      try {
        return (text ? JSON.parse(text) : undefined) as T;
      } catch {
        throw new CliError(
          `the API at ${url} answered ${request.method ?? 'GET'} ${path} with something else than JSON: is it the API's address?`,
          EXIT.failed,
        );
      }
    }
    throw errorOf(response.status, text, `${request.method ?? 'GET'} ${path}`, response.headers.get('retry-after'));
  }
}

/** What an error answer means for a person: its message (the API names the field), and the exit code. */
function errorOf(status: number, text: string, what: string, retryAfter: string | null): CliError {
  // Not the API's JSON (a proxy's page): its start, on one line.
  let message = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  let existingId: string | undefined;
  try {
    const body = JSON.parse(text) as { message?: string; existingId?: string };
    message = body.message ?? message;
    existingId = body.existingId;
  } catch {
    // kept as read
  }
  const error = (text: string, code: number) => new CliError(text, code, status, existingId);
  if (status === 401) return error(`the token was refused (401: ${message}): log in again with \`pds login\``, EXIT.auth);
  if (status === 403) return error(`not allowed (403): ${message}`, EXIT.auth);
  if (status === 404) return error(`not found (404): ${message}`, EXIT.usage);
  if (status === 429)
    return error(`too many jobs waiting (429): ${message}${retryAfter ? `; try again in ${retryAfter} s` : ''}`, EXIT.failed);
  if (status >= 500) return error(`the service could not answer ${what} (${status}): ${message}`, EXIT.failed);
  return error(`${message} (${status})`, EXIT.usage);
}
