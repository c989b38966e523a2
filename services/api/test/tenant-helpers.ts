import type { App } from '../src/app.js';
import { auth, manifest } from './harness.js';

/** A LocalFileSet manifest whose folder is in the tenant's own area (`/tmp/tenants/<tenant>/<name>`). */
export const tenantManifest = (tenant: string, name: string, extra = '') =>
  manifest(name, extra).replace(`/tmp/${name}`, `/tmp/tenants/${tenant}/${name}`);

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Calls the API with a token (the bootstrap platform admin's when none is given). */
export function caller(app: App, token?: string) {
  const headers = token ? { authorization: `Bearer ${token}` } : auth;
  return (method: Method, url: string, payload?: object | string) =>
    app.inject({
      method,
      url,
      headers: { ...headers, ...(typeof payload === 'string' ? { 'content-type': 'application/yaml' } : {}) },
      ...(payload !== undefined ? { payload } : {}),
    });
}

/** Creates tenants and one token per tenant role in each, as the platform admin. */
export async function tenantsWithTokens(app: App, names: string[]) {
  const platform = caller(app);
  const tokens: Record<string, Record<'viewer' | 'deployer' | 'admin', string>> = {};
  for (const name of names) {
    const created = await platform('POST', '/v1/tenants', { name, displayName: name.toUpperCase() });
    if (created.statusCode !== 201) throw new Error(`tenant ${name}: ${created.body}`);
    const issue = async (role: string) => {
      const res = await platform('POST', '/v1/tokens', { name: `${name}-${role}`, role, tenant: name });
      if (res.statusCode !== 201) throw new Error(`token ${name}-${role}: ${res.body}`);
      return res.json().token as string;
    };
    tokens[name] = { viewer: await issue('viewer'), deployer: await issue('deployer'), admin: await issue('admin') };
  }
  return tokens;
}

/** One caller per tenant role, from `tenantsWithTokens`' tokens of one tenant. */
export function roleCallers(app: App, tokens: Record<'viewer' | 'deployer' | 'admin', string>) {
  return { viewer: caller(app, tokens.viewer), deployer: caller(app, tokens.deployer), admin: caller(app, tokens.admin) };
}
