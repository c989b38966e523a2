import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import {
  accessPlugin,
  type Authenticator,
  bearerToken,
  errorHandler,
  readiness,
  Metrics,
  publicRoutes,
  type Config,
  Keyring,
  JobListIndex,
  LEASE_BEATS,
  localFilesRoot,
  type KindRegistry,
  type Logger,
  type Models,
  type StackQueue,
  type WaitingJobs,
  tokenAuthenticator,
  type DeliveryRetries,
  WebhookAddressPolicy,
} from '@pds/shared';
import type { Queue } from 'bullmq';
import type { Static } from '@sinclair/typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { consoleRoot } from '@pds/console';
import { consoleRoutes } from './console.js';
import { auditPlugin } from './plugins/audit.js';
import { accessRoutes } from './routes/access.js';
import { credentialRoutes } from './routes/credentials.js';
import { jobRoutes } from './routes/jobs.js';
import { HealthSchema, ReadySchema } from './routes/schemas.js';
import { EndedJobViews } from './services/ended-jobs.js';
import type { JobView } from './services/jobs.js';
import { resourceRoutes } from './routes/resources.js';
import { stackRoutes } from './routes/stack.js';
import { templateRoutes } from './routes/templates.js';
import { tenantRoutes } from './routes/tenants.js';
import { webhookRoutes } from './routes/webhooks.js';
import { driftRoutes } from './routes/drift.js';

export interface ApiDeps {
  models: Models;
  kinds: KindRegistry;
  queue: Pick<Queue, 'add' | 'remove' | 'getJob' | 'getJobCounts' | 'keys'>;
  /** The webhooks queue (WEBHOOKS_QUEUE): pings, redeliveries, approval events. */
  webhookQueue: Pick<Queue, 'add'>;
  /** The job lifecycle queue (JOB_LIFECYCLE_QUEUE): the after-end reactions of jobs ended here (cancelled while waiting). */
  lifecycleQueue: Pick<Queue, 'add'>;
  /** The drift schedules' queue (DRIFT_QUEUE): one job scheduler per scheduled resource. */
  driftQueue: Pick<Queue, 'upsertJobScheduler' | 'removeJobScheduler' | 'getJobScheduler'>;
  /** A fail-fast (`command`) connection: readiness, cancel requests, the job list's index. */
  redis: Pick<Redis, 'ping' | 'publish' | 'set' | 'get' | 'del' | 'hexists' | 'zcount' | 'eval' | 'multi' | 'zrange' | 'zrem'>;
  stacks: Pick<StackQueue, 'enqueue' | 'remove' | 'claim' | 'unclaim' | 'describe' | 'next'>;
  /** Where jobs wait for the dispatcher (shared/src/dispatch). */
  waiting: Pick<WaitingJobs, 'add' | 'forget' | 'entry' | 'settle' | 'untake'>;
  /** Answers whether Mongo is reachable, for readiness. */
  mongoPing(): Promise<unknown>;
  /**
   * A subscriber connection of its own, for hearing that an ended job changed (JOB_AMENDED_CHANNEL):
   * ended jobs' views are cached only with it.
   */
  subscriber?: Redis;
}

/** What routes work with: the dependencies plus what the app derives from config. */
export interface AppContext extends ApiDeps {
  logger: Logger;
  /** Seals credentials; undefined when CREDENTIALS_KEY is not set. */
  keyring?: Keyring;
  authenticator: Authenticator;
  endedJobs: EndedJobViews<JobView>;
  /** The largest manifest accepted (MANIFEST_MAX_BYTES). */
  manifestMaxBytes: number;
  /** Where local-file kinds may write (LOCAL_FILES_ROOT). */
  localFilesRoot: string;
  /** The longest timeoutSeconds a deployer may ask for (JOB_TIMEOUT_MAX_DEPLOYER_SECONDS). */
  deployerTimeoutMax: number;
  /** How long a publish waits for its smoke preview (PUBLISH_CHECK_TIMEOUT_SECONDS), in ms. */
  publishCheckTimeoutMs: number;
  /** Which addresses webhooks may reach (WEBHOOK_ALLOWED_CIDRS). */
  addresses: WebhookAddressPolicy;
  /** How webhook messages are retried (WEBHOOK_MAX_ATTEMPTS, WEBHOOK_RETRY_DELAY_MS). */
  retries: DeliveryRetries;
  /** DRIFT_MIN_INTERVAL_SECONDS. */
  driftMinIntervalSeconds: number;
  /** DRIFT_MAX_SCHEDULES_PER_TENANT. */
  driftMaxSchedulesPerTenant: number;
  /** The job list's index (job-list-index.ts). */
  jobList: JobListIndex;
  /** How long a tenant place taken for a job that starts at once holds before its runner renews it (LEASE_BEATS beats). */
  placeHoldMs: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    deps: AppContext;
    metrics: Metrics;
  }
}

type OpenApiDocument = { paths?: Record<string, Record<string, Record<string, unknown>>> };

/** The OpenAPI document with each operation's access decision as `x-access`. */
function withAccess(doc: OpenApiDocument, routes: ReturnType<FastifyInstance['routeAccess']>): OpenApiDocument {
  for (const route of routes) {
    const operation = doc.paths?.[route.url.replace(/:(\w+)/g, '{$1}')]?.[route.method.toLowerCase()];
    if (operation) operation['x-access'] = route.access;
  }
  return doc;
}

/** Builds the API (plugins, then routes, then the error handler); never listens. */
export async function buildApp(config: Config, deps: ApiDeps, logger: Logger) {
  const app = Fastify({
    loggerInstance: logger,
    // Room for the largest manifest (as JSON, escaped), else 1 MiB.
    bodyLimit: Math.max(1024 * 1024, 2 * config.MANIFEST_MAX_BYTES + 64 * 1024),
    // Long ids reach validation and get a 400 naming the field, instead of the router's bare 414.
    routerOptions: { maxParamLength: 2048 },
    // Unknown fields are an error the caller should hear about, not something to drop silently.
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  const authenticator = tokenAuthenticator(deps.models, config.ADMIN_TOKEN);
  const endedJobs = new EndedJobViews<JobView>(deps.subscriber);
  // Not awaited: with Redis away the API still starts (nothing is cached until the subscription answers).
  void endedJobs.start();
  app.addHook('onClose', () => endedJobs.stop());
  app.decorate('deps', {
    ...deps,
    logger,
    keyring: Keyring.fromConfig(config),
    authenticator,
    endedJobs,
    manifestMaxBytes: config.MANIFEST_MAX_BYTES,
    localFilesRoot: localFilesRoot(config),
    deployerTimeoutMax: config.JOB_TIMEOUT_MAX_DEPLOYER_SECONDS,
    publishCheckTimeoutMs: config.PUBLISH_CHECK_TIMEOUT_SECONDS * 1000,
    addresses: new WebhookAddressPolicy(config.WEBHOOK_ALLOWED_CIDRS),
    retries: { attempts: config.WEBHOOK_MAX_ATTEMPTS, delayMs: config.WEBHOOK_RETRY_DELAY_MS },
    driftMinIntervalSeconds: config.DRIFT_MIN_INTERVAL_SECONDS,
    driftMaxSchedulesPerTenant: config.DRIFT_MAX_SCHEDULES_PER_TENANT,
    placeHoldMs: LEASE_BEATS * config.RUNNER_HEARTBEAT_SECONDS * 1000,
    jobList: new JobListIndex(deps.redis),
  });

  // Manifests are posted as YAML text.
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );

  // The route schemas are the OpenAPI document: served as /docs/json, readable at /docs.
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Pulumi deployment service',
        version: '1',
        description:
          "Tenants, resources (manifests), credentials and deployment jobs. Every object belongs to one tenant; a tenant's tokens see only their own. Live output: the stream gateway (docs/stream-protocol.md).",
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    // Each operation says who may call it (`x-access`: public, or the least role), read from the
    // same route config the access plugin decides by.
    transformObject: (documents) => withAccess((documents as { openapiObject: OpenApiDocument }).openapiObject, app.routeAccess()),
  });
  // Access first, so that it sees every route registered after it (the docs pages are public).
  await app.register(accessPlugin, { identify: (request) => authenticator.authenticate(bearerToken(request.headers.authorization)) });
  await app.register(publicRoutes, { plugin: swaggerUi, options: { routePrefix: '/docs' } });
  await app.register(auditPlugin, { models: deps.models });

  const metrics = new Metrics();
  app.decorate('metrics', metrics);
  app.addHook('onResponse', async (request, reply) => {
    const labels = { route: request.routeOptions.url ?? 'unknown', method: request.method };
    metrics.inc('api_requests_total', 'HTTP requests by route and status code', { ...labels, code: String(reply.statusCode) });
    metrics.observe('api_request_duration_seconds', 'HTTP request durations by route', labels, reply.elapsedTime / 1000);
  });
  const open = { security: [] as never[], tags: ['service'] };
  const publicRoute = { access: 'public' as const };
  app.get(
    '/metrics',
    {
      config: publicRoute,
      schema: { ...open, summary: 'Prometheus metrics', produces: ['text/plain'], response: { 200: { type: 'string' } } },
    },
    async (_request, reply) => reply.type('text/plain; version=0.0.4').send(metrics.render()),
  );

  app.get('/health', { config: publicRoute, schema: { ...open, summary: 'Liveness', response: { 200: HealthSchema } } }, async () => ({
    status: 'ok' as const,
  }));
  app.get(
    '/ready',
    {
      config: publicRoute,
      schema: { ...open, summary: 'Readiness: MongoDB and Redis answer', response: { 200: ReadySchema, 503: ReadySchema } },
    },
    async (_request, reply) => {
      const { ready, body } = await readiness({ mongo: deps.mongoPing, redis: () => deps.redis.ping() });
      return reply.code(ready ? 200 : 503).send(body as Static<typeof ReadySchema>);
    },
  );

  // The error handler goes in before the routes: an awaited register() snapshots the parent's
  // handler into the route plugin's context.
  app.setErrorHandler(errorHandler);

  await app.register(resourceRoutes);
  await app.register(jobRoutes);
  await app.register(credentialRoutes);
  await app.register(accessRoutes);
  await app.register(tenantRoutes);
  await app.register(templateRoutes);
  await app.register(stackRoutes);
  await app.register(webhookRoutes);
  await app.register(driftRoutes);
  await app.register(consoleRoutes, { root: consoleRoot, gatewayUrl: config.CONSOLE_GATEWAY_URL });

  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
