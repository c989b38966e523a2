import { signOut, token } from './session.js';

/** An answer of the API that was not a success: its status and message (`{ statusCode, error, message }`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** A 409 for a name already taken: the id of the object that has it. */
    readonly existingId?: string,
  ) {
    super(message);
  }
}

/** The API's root, relative to the page, so that the console works under a proxy's sub-path. */
export function apiUrl(path: string): string {
  return new URL(`../${path.replace(/^\//, '')}`, new URL('.', location.href)).toString();
}

export interface RequestOptions {
  body?: unknown;
  /** Sent as application/yaml (a manifest). */
  yaml?: string;
  signal?: AbortSignal;
  /** The browser's HTTP cache (default: not used; an answer the API tags, such as the runtime's types, may revalidate). */
  cache?: RequestCache;
}

/**
 * Calls the API with the signed-in token. A 401 signs the tab out and says why (the sign-in page
 * shows it); any other error is an ApiError with the API's own message.
 */
export async function api<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const bearer = token();
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  let body: string | undefined;
  if (options.yaml !== undefined) {
    headers['content-type'] = 'application/yaml';
    body = options.yaml;
  } else if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  let res: Response;
  try {
    res = await fetch(apiUrl(path), { method, headers, body, signal: options.signal, cache: options.cache ?? 'no-store' });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'The service cannot be reached: check your connection, then try again.');
  }
  const text = await res.text();
  const parsed = text ? safeJson(text) : undefined;
  if (res.ok) return parsed as T;
  const { message = `${res.status} ${res.statusText}`, existingId } = (parsed ?? {}) as { message?: string; existingId?: string };
  if (res.status === 401 && bearer) signOut(`Signed out: ${message}`);
  throw new ApiError(res.status, message, existingId);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

/** A list page of the API: `{ items, nextCursor? }`. */
export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

/** A query string from the set values only. */
export function query(params: Record<string, string | number | undefined>): string {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== '') as [string, string | number][];
  if (entries.length === 0) return '';
  return `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)])).toString()}`;
}
