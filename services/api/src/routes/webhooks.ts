import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { principalOf, WEBHOOK_EVENTS } from '@pds/shared';
import { Type } from '@sinclair/typebox';
import { tenantService } from '../services/tenants.js';
import { webhookService } from '../services/webhooks.js';
import { errorResponses, IdParamsSchema, PageOf, PageQuery, TenantQuerySchema } from './schemas.js';

const EventName = Type.Unsafe<(typeof WEBHOOK_EVENTS)[number]>({ type: 'string', enum: [...WEBHOOK_EVENTS] });
const Events = Type.Array(EventName, {
  minItems: 1,
  maxItems: WEBHOOK_EVENTS.length,
  description: 'The events to send (ping is always sent)',
});
const Url = Type.String({
  minLength: 8,
  maxLength: 2048,
  description: 'http(s) URL; private, loopback and link-local addresses are refused unless allowed (WEBHOOK_ALLOWED_CIDRS)',
});
const Secret = Type.String({
  minLength: 38,
  maxLength: 100,
  description: 'A Standard Webhooks secret (whsec_ + base64 of 24 to 64 bytes); made when absent',
});
const Description = Type.String({ maxLength: 500 });

const WebhookSchema = Type.Object({
  id: Type.String(),
  tenant: Type.String(),
  url: Type.String(),
  description: Type.String(),
  events: Type.Array(Type.String()),
  active: Type.Boolean(),
  createdBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
const CreatedWebhookSchema = Type.Composite([
  WebhookSchema,
  Type.Object({
    secret: Type.String({ description: 'The signing secret, shown this once' }),
    pingDelivery: Type.String({ description: 'The id of the ping sent to the new webhook (see its deliveries)' }),
  }),
]);
const CreateWebhookSchema = Type.Object(
  {
    url: Url,
    events: Events,
    description: Type.Optional(Description),
    active: Type.Optional(Type.Boolean()),
    secret: Type.Optional(Secret),
    tenant: Type.Optional(Type.String({ maxLength: 63, description: 'Platform admins: the tenant it belongs to (default `default`)' })),
  },
  { additionalProperties: false },
);
const UpdateWebhookSchema = Type.Object(
  {
    url: Type.Optional(Url),
    events: Type.Optional(Events),
    description: Type.Optional(Description),
    active: Type.Optional(Type.Boolean()),
    secret: Type.Optional(Secret),
  },
  { additionalProperties: false, minProperties: 1 },
);
const DeliverySchema = Type.Object({
  id: Type.String({ description: 'The message id receivers see as webhook-id (the same on every try and redelivery)' }),
  webhookId: Type.String(),
  event: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')]),
  payload: Type.Record(Type.String(), Type.Unknown()),
  attempts: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time' }),
      statusCode: Type.Optional(Type.Integer()),
      error: Type.Optional(Type.String()),
      durationMs: Type.Number(),
    }),
  ),
  redeliveries: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  deliveredAt: Type.Optional(Type.String({ format: 'date-time' })),
});
const DeliveryParamsSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  deliveryId: Type.String({ minLength: 1, maxLength: 64 }),
});
const ListQuerySchema = Type.Object({ ...TenantQuerySchema.properties, ...PageQuery });
const PageQuerySchema = Type.Object(PageQuery);

/** A tenant's webhooks and their delivery logs; admins only (a webhook's events describe every deployment of the tenant). */
export const webhookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const webhooks = webhookService({ ...app.deps, tenants: tenantService(app.deps) });
  const tags = ['webhooks'];

  app.post(
    '/v1/webhooks',
    {
      config: { access: 'admin', action: 'webhook.create' },
      schema: {
        tags,
        summary: 'Create a webhook (its signing secret is returned this once; a ping is sent to it)',
        body: CreateWebhookSchema,
        response: { 201: CreatedWebhookSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const created = await webhooks.create(request.body, principalOf(request));
      request.auditTarget = created.id;
      request.auditTenant = created.tenant;
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/v1/webhooks',
    {
      config: { access: 'admin' },
      schema: {
        tags,
        summary: 'List webhooks, newest first',
        querystring: ListQuerySchema,
        response: { 200: PageOf(WebhookSchema), ...errorResponses },
      },
    },
    async (request) => webhooks.list(request.query, principalOf(request)),
  );

  app.get(
    '/v1/webhooks/:id',
    { config: { access: 'admin' }, schema: { tags, params: IdParamsSchema, response: { 200: WebhookSchema, ...errorResponses } } },
    async (request) => webhooks.get(request.params.id, principalOf(request)),
  );

  app.patch(
    '/v1/webhooks/:id',
    {
      config: { access: 'admin', action: 'webhook.update' },
      schema: {
        tags,
        summary: 'Change a webhook: URL, events, description, active, or a new secret (never returned)',
        params: IdParamsSchema,
        body: UpdateWebhookSchema,
        response: { 200: WebhookSchema, ...errorResponses },
      },
    },
    async (request) => {
      const updated = await webhooks.update(request.params.id, request.body, principalOf(request));
      request.auditTenant = updated.tenant;
      return updated;
    },
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      config: { access: 'admin', action: 'webhook.delete' },
      schema: {
        tags,
        summary: 'Delete a webhook and its delivery log',
        params: IdParamsSchema,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      const removed = await webhooks.remove(request.params.id, principalOf(request));
      request.auditTenant = removed.tenantId;
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      config: { access: 'admin' },
      schema: {
        tags,
        summary: "A webhook's messages, newest first, each with every try (status code or error, duration)",
        params: IdParamsSchema,
        querystring: PageQuerySchema,
        response: { 200: PageOf(DeliverySchema), ...errorResponses },
      },
    },
    async (request) => webhooks.deliveries(request.params.id, request.query, principalOf(request)),
  );

  app.post(
    '/v1/webhooks/:id/deliveries/:deliveryId/redeliver',
    {
      config: { access: 'admin', action: 'webhook.redeliver' },
      schema: {
        tags,
        summary: 'Send a message again (same webhook-id, fresh signature, retried as the first time)',
        params: DeliveryParamsSchema,
        response: { 202: DeliverySchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const queued = await webhooks.redeliver(request.params.id, request.params.deliveryId, principalOf(request));
      request.auditTarget = request.params.id;
      return reply.code(202).send(queued);
    },
  );
};
