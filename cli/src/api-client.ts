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
      response = await fetch(`${url}${path}`, { method: request.method ?? 'GET', headers, body, signal: AbortSignal.timeout(60_000) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the API at ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, EXIT.failed);
    }
    const text = await response.text();
    if (response.ok) return (text ? JSON.parse(text) : undefined) as T;
    throw errorOf(response.status, text, `${request.method ?? 'GET'} ${path}`);
  }
}

/** What an error answer means for a person: its message (the API names the field), and the exit code. */
function errorOf(status: number, text: string, what: string): CliError {
  let message = text.slice(0, 500);
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {
    // not the API's JSON (a proxy's page): its start is shown
  }
  if (status === 401) return new CliError(`the token was refused (401: ${message}): log in again with \`pds login\``, EXIT.auth);
  if (status === 403) return new CliError(`not allowed (403): ${message}`, EXIT.auth);
  if (status === 404) return new CliError(`not found (404): ${message}`, EXIT.usage);
  if (status >= 500) return new CliError(`the service could not answer ${what} (${status}): ${message}`, EXIT.failed);
  return new CliError(`${message} (${status})`, EXIT.usage);
}
