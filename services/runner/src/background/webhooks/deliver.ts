import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import {
  type DeliveryAttempt,
  type Keyring,
  type Models,
  signWebhook,
  type WebhookAddressPolicy,
  type WebhookDeliveryDoc,
  type WebhookDoc,
  webhookSecretKey,
} from '@pds/shared';

export interface DeliverDeps {
  models: Pick<Models, 'Webhook' | 'WebhookDelivery'>;
  keyring?: Keyring;
  addresses: WebhookAddressPolicy;
  timeoutMs: number;
}

/** The most of a receiver's answer read (and thrown away): its status code is what counts. */
const ANSWER_MAX_BYTES = 64 * 1024;

/** POSTs a body; resolves to the answer's status code, rejects on a refused address, a network error or the timeout. */
function post(url: URL, body: string, headers: Record<string, string>, deps: DeliverDeps): Promise<number> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // An address written in the URL is not looked up: judge it here.
  const refused = isIP(host) ? deps.addresses.refusal(host) : undefined;
  if (refused) return Promise.reject(new Error(refused));
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    // One deadline for the whole exchange: a receiver that trickles its answer cannot hold a worker.
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${deps.timeoutMs} ms`)), deps.timeoutMs);
    const req = send(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'user-agent': 'pulumi-deploy-service-webhooks/1' },
        lookup: deps.addresses.guardedLookup() as never,
      },
      (res) => {
        // The status code is the answer; the body is read (at most ANSWER_MAX_BYTES) only to free the socket.
        clearTimeout(deadline);
        resolve(res.statusCode ?? 0);
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > ANSWER_MAX_BYTES) res.destroy();
        });
        res.on('error', () => undefined);
        setTimeout(() => res.destroy(), 1_000).unref();
      },
    );
    req.on('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    req.end(body);
  });
}

/** Why one try failed, as the delivery log shows it. */
export class DeliveryFailed extends Error {}

/**
 * A message whose last try ended without being recorded (the runner could not open the secret, the
 * store failed, BullMQ gave up on a stalled try): `failed`, so that it can be redelivered.
 */
export async function giveUpDelivery(models: Pick<Models, 'WebhookDelivery'>, deliveryId: string, error: string): Promise<void> {
  const attempt: DeliveryAttempt = { at: new Date(), error, durationMs: 0 };
  await models.WebhookDelivery.updateOne(
    { _id: deliveryId, status: 'pending' },
    { $set: { status: 'failed' }, $push: { attempts: attempt } },
  );
}

/**
 * One try at delivering a message: signed anew (a fresh timestamp), POSTed, and recorded in its
 * delivery log. A 2xx answer delivers it; anything else throws (the queue tries again, waits
 * doubling) and, on the last try, marks it `failed`. A webhook deleted or turned off meanwhile
 * cancels it.
 */
export async function deliverMessage(deps: DeliverDeps, deliveryId: string, lastTry: boolean): Promise<void> {
  const { Webhook, WebhookDelivery } = deps.models;
  const delivery = await WebhookDelivery.findById(deliveryId).lean<WebhookDeliveryDoc>();
  if (!delivery || delivery.status !== 'pending') return;
  const hook = await Webhook.findById(delivery.webhookId).lean<WebhookDoc>();
  if (!hook || (!hook.active && delivery.event !== 'ping')) {
    await WebhookDelivery.updateOne({ _id: deliveryId, status: 'pending' }, { $set: { status: 'cancelled' } });
    return;
  }
  if (!deps.keyring) throw new DeliveryFailed('CREDENTIALS_KEY is not set on this runner: webhook secrets cannot be opened');
  const key = webhookSecretKey(deps.keyring.open(hook.sealedSecret, hook._id));
  if (!key) throw new DeliveryFailed(`webhook ${hook._id} holds no usable secret`);
  const headers = signWebhook(key, delivery._id, Math.floor(Date.now() / 1000), delivery.payload);
  const at = new Date();
  const started = performance.now();
  const outcome = await post(new URL(hook.url), delivery.payload, headers, deps).then(
    (statusCode) => ({ statusCode }),
    (err: Error) => ({ error: err.message }),
  );
  const attempt: DeliveryAttempt = { at, durationMs: Math.round(performance.now() - started), ...outcome };
  const delivered = 'statusCode' in outcome && outcome.statusCode >= 200 && outcome.statusCode < 300;
  const status = delivered ? { status: 'succeeded', deliveredAt: new Date() } : lastTry ? { status: 'failed' } : {};
  await WebhookDelivery.updateOne({ _id: deliveryId }, { $push: { attempts: attempt }, $set: status });
  if (!delivered) throw new DeliveryFailed('statusCode' in outcome ? `the receiver answered ${outcome.statusCode}` : outcome.error);
}
