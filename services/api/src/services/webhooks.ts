import { createHash, randomUUID } from 'node:crypto';
import {
  type DeliveryRetries,
  errors,
  type Keyring,
  MAX_WEBHOOKS_PER_TENANT,
  type Models,
  newWebhookSecret,
  type Principal,
  queueDelivery,
  tenantFilter,
  type TenantViewer,
  type WebhookAddressPolicy,
  type WebhookDeliveryDoc,
  type WebhookDoc,
  webhookSecretKey,
} from '@pds/shared';
import type { Queue } from 'bullmq';
import { listPage } from './pagination.js';
import type { TenantService } from './tenants.js';

export interface WebhookServiceDeps {
  models: Pick<Models, 'Webhook' | 'WebhookDelivery' | 'Tenant'>;
  tenants: Pick<TenantService, 'actingTenant'>;
  keyring?: Keyring;
  webhookQueue: Pick<Queue, 'add'>;
  addresses: WebhookAddressPolicy;
  retries: DeliveryRetries;
}

export interface WebhookInput {
  url: string;
  events: string[];
  description?: string;
  active?: boolean;
  /** A `whsec_` secret of the receiver's choosing; one is made when absent (and shown once). */
  secret?: string;
  tenant?: string;
}

/** How many times one message may be asked for again. */
export const MAX_REDELIVERIES = 20;
const URL_MAX_LENGTH = 2048;

export function webhookView(doc: WebhookDoc) {
  return {
    id: doc._id,
    tenant: doc.tenantId,
    url: doc.url,
    description: doc.description,
    events: doc.events,
    active: doc.active,
    createdBy: doc.createdBy,
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
  };
}

export function deliveryView(doc: WebhookDeliveryDoc) {
  return {
    id: doc._id,
    webhookId: doc.webhookId,
    event: doc.event,
    status: doc.status,
    payload: JSON.parse(doc.payload) as Record<string, unknown>,
    attempts: (doc.attempts ?? []).map((a) => ({
      at: new Date(a.at).toISOString(),
      ...(a.statusCode !== undefined && a.statusCode !== null ? { statusCode: a.statusCode } : {}),
      ...(a.error ? { error: a.error } : {}),
      durationMs: a.durationMs,
    })),
    redeliveries: doc.redeliveries,
    createdAt: doc.createdAt.toISOString(),
    ...(doc.deliveredAt ? { deliveredAt: doc.deliveredAt.toISOString() } : {}),
  };
}

/** A tenant's webhooks: where its events go, signed with a secret only the receiver and the runners can read. */
export function webhookService({ models, tenants, keyring, webhookQueue, addresses, retries }: WebhookServiceDeps) {
  function requireKeyring(): Keyring {
    if (!keyring) throw errors.unavailable('webhooks are disabled: set CREDENTIALS_KEY (their secrets are sealed with it)');
    return keyring;
  }

  /** The URL as given, if the service may send to it (400 naming `url` otherwise). */
  async function checkUrl(text: string): Promise<string> {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw errors.invalidRequest('url: not an absolute URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw errors.invalidRequest(`url: ${url.protocol} is not http: or https:`);
    if (url.username || url.password)
      throw errors.invalidRequest('url: no user or password in the URL (it is shown to every admin); verify signatures instead');
    if (text.length > URL_MAX_LENGTH) throw errors.invalidRequest(`url: longer than ${URL_MAX_LENGTH} characters`);
    const refused = await addresses.urlRefusal(url);
    if (refused) throw errors.invalidRequest(`url: ${refused}`);
    return text;
  }

  function checkSecret(secret: string): string {
    if (!webhookSecretKey(secret))
      throw errors.invalidRequest('secret: a Standard Webhooks secret: whsec_ followed by 24 to 64 bytes in base64');
    return secret;
  }

  async function find(id: string, viewer: TenantViewer): Promise<WebhookDoc> {
    const doc = await models.Webhook.findOne({ _id: id, ...tenantFilter(viewer) }).lean<WebhookDoc>();
    if (!doc) throw errors.notFound(`webhook ${id} not found`);
    return doc;
  }

  /** A `ping` to a new webhook, so its owner sees at once whether the receiver answers (in its deliveries). */
  async function ping(hook: WebhookDoc): Promise<string> {
    const id = `msg_${createHash('sha256').update(`ping ${hook._id}`).digest('hex').slice(0, 32)}`;
    const payload = JSON.stringify({
      type: 'ping',
      timestamp: new Date().toISOString(),
      data: { webhookId: hook._id, tenant: hook.tenantId, events: hook.events },
    });
    await models.WebhookDelivery.create({ _id: id, webhookId: hook._id, tenantId: hook.tenantId, event: 'ping', payload });
    await queueDelivery(webhookQueue, id, retries).catch(async (err: Error) => {
      const attempt = { at: new Date(), error: `could not be queued (Redis unavailable): ${err.message}`, durationMs: 0 };
      await models.WebhookDelivery.updateOne({ _id: id }, { $set: { status: 'failed' }, $push: { attempts: attempt } });
    });
    return id;
  }

  return {
    async create(input: WebhookInput, caller: Principal) {
      const sealer = requireKeyring();
      const tenant = await tenants.actingTenant(caller, input.tenant);
      const url = await checkUrl(input.url);
      const secret = input.secret === undefined ? newWebhookSecret() : checkSecret(input.secret);
      if ((await models.Webhook.countDocuments({ tenantId: tenant })) >= MAX_WEBHOOKS_PER_TENANT) {
        throw errors.conflict(`tenant ${tenant} has ${MAX_WEBHOOKS_PER_TENANT} webhooks, the most it may have; delete one first`);
      }
      const _id = randomUUID();
      const created = await models.Webhook.create({
        _id,
        tenantId: tenant,
        url,
        description: input.description ?? '',
        events: [...new Set(input.events)],
        active: input.active ?? true,
        sealedSecret: sealer.seal(secret, _id),
        createdBy: caller.name,
      });
      const doc = created.toObject() as WebhookDoc;
      // A ping that cannot even be recorded must not lose the secret, shown only now.
      const pingDelivery = await ping(doc).catch(() => '');
      // The secret is shown this once: the receiver needs it to verify signatures.
      return { ...webhookView(doc), secret, pingDelivery };
    },

    async list(query: { tenant?: string; limit: number; cursor?: string }, viewer: TenantViewer) {
      const filter = tenantFilter(viewer, query.tenant);
      return listPage(models.Webhook, filter, { field: 'createdAt', limit: query.limit, cursor: query.cursor }, (doc: WebhookDoc) =>
        webhookView(doc),
      );
    },

    async get(id: string, viewer: TenantViewer) {
      return webhookView(await find(id, viewer));
    },

    async update(id: string, input: Partial<Omit<WebhookInput, 'tenant'>>, viewer: TenantViewer) {
      const hook = await find(id, viewer);
      const set: Record<string, unknown> = {};
      if (input.url !== undefined) set.url = await checkUrl(input.url);
      if (input.events !== undefined) set.events = [...new Set(input.events)];
      if (input.description !== undefined) set.description = input.description;
      if (input.active !== undefined) set.active = input.active;
      if (input.secret !== undefined) set.sealedSecret = requireKeyring().seal(checkSecret(input.secret), hook._id);
      const updated = await models.Webhook.findOneAndUpdate(
        { _id: hook._id },
        { $set: set },
        { returnDocument: 'after' },
      ).lean<WebhookDoc>();
      if (!updated) throw errors.notFound(`webhook ${id} not found`);
      return webhookView(updated);
    },

    /** Deletes it and its delivery log; messages still waiting are dropped when their turn comes. */
    async remove(id: string, viewer: TenantViewer) {
      const hook = await find(id, viewer);
      await models.Webhook.deleteOne({ _id: hook._id });
      await models.WebhookDelivery.deleteMany({ webhookId: hook._id });
      return hook;
    },

    async deliveries(id: string, page: { limit: number; cursor?: string }, viewer: TenantViewer) {
      const hook = await find(id, viewer);
      return listPage(
        models.WebhookDelivery,
        { webhookId: hook._id },
        { field: 'createdAt', limit: page.limit, cursor: page.cursor },
        (doc: WebhookDeliveryDoc) => deliveryView(doc),
      );
    },

    /** Sends a message again (same id, so a receiver that has it can tell), with a fresh signature and retries. */
    async redeliver(id: string, deliveryId: string, viewer: TenantViewer) {
      const hook = await find(id, viewer);
      const current = await models.WebhookDelivery.findOne({ _id: deliveryId, webhookId: hook._id }).lean<WebhookDeliveryDoc>();
      if (!current) throw errors.notFound(`delivery ${deliveryId} of webhook ${id} not found`);
      if (current.redeliveries >= MAX_REDELIVERIES)
        throw errors.conflict(`delivery ${deliveryId} was redelivered ${MAX_REDELIVERIES} times, the most`);
      const doc = await models.WebhookDelivery.findOneAndUpdate(
        { _id: deliveryId, status: { $ne: 'pending' }, redeliveries: { $lt: MAX_REDELIVERIES } },
        { $set: { status: 'pending' }, $inc: { redeliveries: 1 } },
        { returnDocument: 'after' },
      ).lean<WebhookDeliveryDoc>();
      if (!doc) throw errors.conflict(`delivery ${deliveryId} is still being tried; redeliver it once it has succeeded or failed`);
      try {
        await queueDelivery(webhookQueue, deliveryId, retries, doc.redeliveries);
      } catch (err) {
        await models.WebhookDelivery.updateOne({ _id: deliveryId }, { $set: { status: current.status }, $inc: { redeliveries: -1 } });
        throw errors.unavailable(`the delivery queue (Redis) is unavailable; nothing was queued: ${(err as Error).message}`);
      }
      return deliveryView(doc);
    },
  };
}
