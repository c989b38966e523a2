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
