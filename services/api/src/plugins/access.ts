import { bearerToken, errors, type Authenticator, type Principal, type Role, roleAllows } from '@pds/shared';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The least role that may call the route; routes under /v1 without one need `admin`. */
    role?: Role;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** Refuses with 403 unless the caller's role allows `needed`; `what` says what was refused. */
export function ensureRole(request: FastifyRequest, needed: Role, what: string): void {
  const principal = request.principal;
  if (!principal) throw errors.unauthorized('missing Authorization: Bearer <token> header');
  if (!roleAllows(principal.role, needed)) {
    throw errors.forbidden(`${what} needs the ${needed} role; token "${principal.name}" has the ${principal.role} role`);
  }
}

/**
 * Bearer-token access for every /v1 route: 401 when the caller is not known (no token, a wrong,
 * revoked or expired one), 403 when it is known but its role is too low for the route.
 */
export const accessPlugin = fp<{ authenticator: Authenticator }>(
  async (app, { authenticator }) => {
    app.decorateRequest('principal', undefined);
    app.addHook('onRequest', async (request) => {
      if (!request.url.startsWith('/v1/')) return;
      const outcome = await authenticator.authenticate(bearerToken(request.headers.authorization));
      if (!outcome.ok) throw errors.unauthorized(outcome.message);
      request.principal = outcome.principal;
      ensureRole(request, request.routeOptions.config.role ?? 'admin', `${request.method} ${request.routeOptions.url ?? request.url}`);
    });
  },
  { name: 'access' },
);
