import { existsSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import { publicRoutes } from '@pds/shared';
import type { FastifyPluginAsync } from 'fastify';

export interface ConsoleOptions {
  /** The built console (console/dist/public): index.html, config-free, and hashed assets/. */
  root: string;
  /** Where browsers reach the stream gateway (CONSOLE_GATEWAY_URL); unset: the same origin. */
  gatewayUrl?: string;
}

/**
 * The policy every console response carries: scripts, workers, fonts and images only from this
 * origin (no inline script, no eval, nothing remote); connections to this origin and the gateway.
 * Styles allow inline `<style>` because the template editor (Monaco) injects its own.
 */
export function contentSecurityPolicy(gatewayUrl?: string): string {
  const gateway = gatewayUrl ? ` ${new URL(gatewayUrl).origin}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "worker-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${gateway}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Serves the web console under /console: index.html never cached (it names the build's assets),
 * the hashed assets cached for a year, gzip files served where the build made them. Every route
 * here is public: the page holds no data, and each API call it makes carries the signed-in token.
 */
export const consoleRoutes: FastifyPluginAsync<ConsoleOptions> = async (app, { root, gatewayUrl }) => {
  const policy = contentSecurityPolicy(gatewayUrl);
  const built = existsSync(join(root, 'index.html'));
  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', policy);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
  });
  // What the page needs before sign-in: where browsers reach the gateway (absent: this origin).
  app.get('/console/settings.json', { config: { access: 'public' }, schema: { hide: true } }, async () =>
    gatewayUrl ? { gatewayUrl } : {},
  );
  // Relative, so that it holds under a proxy's sub-path too.
  app.get('/console', { config: { access: 'public' }, schema: { hide: true } }, (_request, reply) => reply.redirect('console/', 308));
  if (!built) {
    app.get('/console/', { config: { access: 'public' }, schema: { hide: true } }, (_request, reply) =>
      reply.code(503).type('text/plain').send('The console is not built: run `npm run build`.\n'),
    );
    return;
  }
  await app.register(publicRoutes, {
    plugin: fastifyStatic,
    options: {
      root,
      prefix: '/console/',
      preCompressed: true,
      cacheControl: false,
      // Called with the reply (@fastify/static 9+).
      setHeaders(reply: { header(name: string, value: string): void }, path: string) {
        const hashed = relative(root, path).startsWith(`assets${sep}`);
        reply.header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    },
  });
};
