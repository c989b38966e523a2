import type { FastifyPluginAsync, FastifyPluginCallback, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { type AuthOutcome, type Principal, roleAllows } from '../auth.js';
import { errors } from '../errors.js';
import { ROLES, type Role } from '../types.js';

/** Who may call a route: anyone (`public`), or a caller whose role is at least this one. */
export type Access = 'public' | Role;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Required on every route: the server refuses to start with a route that lacks it. */
    access?: Access;
  }
  interface FastifyInstance {
    /** Every route and its access decision, as registered (for the access tests and for docs). */
    routeAccess(): { method: string; url: string; access: Access | undefined; websocket: boolean }[];
  }
  interface FastifyRequest {
    /** Who is calling; set by the access plugin before any handler of a non-public route runs. */
    principal?: Principal;
    /** The hash of the token the caller presented (a socket checks it again while it stays open). */
    tokenHash?: string;
  }
}

export interface AccessOptions {
  /**
   * Who the request says it is (a bearer header, a stream ticket…). Called only for routes that
   * are not public, after the router has matched.
   */
  identify(request: FastifyRequest): Promise<AuthOutcome>;
}

const isAccess = (value: unknown): value is Access => value === 'public' || ROLES.includes(value as Role);

/** The principal of a request that passed the access plugin; a handler that needs one cannot forget it. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw errors.unauthorized('missing Authorization: Bearer <token> header');
  return request.principal;
}

/** The caller and the hash of the token it presented (what a stream ticket is bound to). */
export function callerOf(request: FastifyRequest): { principal: Principal; tokenHash: string } {
  const principal = principalOf(request);
  if (request.tokenHash === undefined) throw errors.unauthorized('missing Authorization: Bearer <token> header');
  return { principal, tokenHash: request.tokenHash };
}

/** Refuses with 403 unless the caller's role allows `needed`; `what` says what was refused. */
export function ensureRole(request: FastifyRequest, needed: Role, what: string): void {
  const principal = principalOf(request);
  if (!roleAllows(principal.role, needed)) {
    throw errors.forbidden(`${what} needs the ${needed} role; token "${principal.name}" has the ${principal.role} role`);
  }
}

/**
 * Deny by default, decided by the route that matched. Every route declares `config.access`; the
 * decision is read from the matched route's config (so percent-encoding, absolute-form targets,
 * HEAD, WebSocket upgrades all get the route's own decision, never one made from the URL text).
 * A route without a decision makes the server refuse to start, and is refused (403) should one
 * ever be reached. Requests that matched no route get the 404 handler, which serves nothing.
 *
 * Register it before any route: routes registered earlier are not seen.
 */
export const accessPlugin = fp<AccessOptions>(
  async (app, { identify }) => {
    const routes: RouteOptions[] = [];
    app.decorateRequest('principal', undefined);
    app.decorateRequest('tokenHash', undefined);
    app.addHook('onRoute', (route) => void routes.push(route));
    app.decorate('routeAccess', () =>
      routes.flatMap((route) =>
        [route.method].flat().map((method) => ({
          method,
          url: route.url,
          access: route.config?.access,
          websocket: Boolean((route as { websocket?: boolean }).websocket || (route as { wsHandler?: unknown }).wsHandler),
        })),
      ),
    );
    app.addHook('onReady', async () => {
      const undecided = routes.filter((route) => !isAccess(route.config?.access));
      if (undecided.length > 0) {
        const names = undecided.map((r) => `${[r.method].flat().join(',')} ${r.url}`).join('; ');
        throw new Error(`routes without an access decision (config.access: 'public' or a role): ${names}`);
      }
    });
    app.addHook('onRequest', async (request) => {
      if (request.is404) return;
      const access = request.routeOptions.config.access;
      if (access === 'public') return;
      if (!isAccess(access)) throw errors.forbidden('this route has no access decision');
      const outcome = await identify(request);
      if (!outcome.ok) throw errors.unauthorized(outcome.message);
      request.principal = outcome.principal;
      request.tokenHash = outcome.tokenHash;
      ensureRole(request, access, `${request.method} ${request.routeOptions.url}`);
    });
  },
  { name: 'access' },
);

/**
 * Registers a third-party plugin whose routes are public (documentation pages) in a scope of its
 * own where each route gets `config.access: 'public'` as it is added, so it passes the start-up
 * check: `app.register(publicRoutes, { plugin: swaggerUi, options: { routePrefix: '/docs' } })`.
 */
export const publicRoutes: FastifyPluginAsync<{
  plugin: FastifyPluginAsync<any> | FastifyPluginCallback<any>;
  options?: Record<string, unknown>;
}> = async (scope, { plugin, options }) => {
  scope.addHook('onRoute', (route) => {
    route.config = { ...route.config, access: 'public' };
  });
  await scope.register(plugin, options);
};
