/**
 * Calls a running API as a script does (the bench, the screenshots): JSON in and out, a manifest as
 * YAML; throws with the API's answer on anything but a success.
 */
export function apiCaller(apiUrl: string, token: string) {
  return async function call<T>(method: string, path: string, body?: unknown, yaml?: string): Promise<T> {
    const res = await fetch(`${apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': yaml ? 'application/yaml' : 'application/json' },
      body: yaml ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
}

/** What injectCaller needs of an app: Fastify's `inject`. */
interface Injectable {
  inject(request: {
    method: 'POST' | 'PUT' | 'GET' | 'DELETE';
    url: string;
    headers: Record<string, string>;
    payload?: object | string;
  }): PromiseLike<{ statusCode: number; body: string; json(): unknown }>;
}

/**
 * Calls an in-process app (Fastify's `inject`) as apiCaller calls a running one: JSON, or a
 * manifest as YAML when the payload is a string; throws with the answer on anything but a success.
 */
export function injectCaller(app: Injectable, auth: Record<string, string>) {
  return async function call<T = { id: string }>(
    method: 'POST' | 'PUT' | 'GET' | 'DELETE',
    url: string,
    payload?: object | string,
  ): Promise<T> {
    const res = await app.inject({
      method,
      url,
      headers: { ...auth, ...(typeof payload === 'string' ? { 'content-type': 'application/yaml' } : {}) },
      ...(payload !== undefined ? { payload } : {}),
    });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json() as T;
  };
}
