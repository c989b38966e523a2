import { createHmac, randomBytes } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import type { Queue } from 'bullmq';
import type { Models, WebhookDoc } from './models/index.js';
import type { Keyring } from './secret-box.js';
import type { Operation } from './types.js';

/**
 * The events a webhook may ask for, named as Pulumi Cloud's: an operation's end, by outcome. State
 * operations (repair, state-*, restore) are `state_operation_*`; a stack removed without destroying
 * its resources is `stack_deleted`. `ping` (sent when a webhook is created) goes to every webhook.
 */
export const WEBHOOK_EVENTS = [
  'update_succeeded',
  'update_failed',
  'preview_succeeded',
  'preview_failed',
  'refresh_succeeded',
  'refresh_failed',
  'destroy_succeeded',
  'destroy_failed',
  'state_operation_succeeded',
  'state_operation_failed',
  'stack_deleted',
  'drift_detected',
  'drift_detection_succeeded',
  'drift_detection_failed',
  'approval_required',
  'approved',
  'rejected',
  'compensated',
  'compensation_failed',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number] | 'ping';

const NOUN: Partial<Record<Operation, string>> = { up: 'update', preview: 'preview', refresh: 'refresh', destroy: 'destroy' };

/** The event a job's end is (cancelled, expired and stale count as failed: the operation did not complete; a rejection is `rejected`). */
export function jobEndEvent(operation: Operation, status: string, drift?: { result?: string }): WebhookEvent | undefined {
  const outcome = status === 'succeeded' ? 'succeeded' : 'failed';
  if (status === 'rejected') return 'rejected';
  // A check that found drift succeeded at its task; one that could not tell failed at it.
  if (operation === 'drift-check') {
    if (drift?.result === 'drifted') return 'drift_detected';
    return drift?.result === 'no_drift' ? 'drift_detection_succeeded' : 'drift_detection_failed';
  }
  if (operation === 'stack-remove') return outcome === 'succeeded' ? 'stack_deleted' : 'state_operation_failed';
  return `${NOUN[operation] ?? 'state_operation'}_${outcome}` as WebhookEvent;
}

/** Most webhooks a tenant may have. */
export const MAX_WEBHOOKS_PER_TENANT = 20;

const SECRET_PREFIX = 'whsec_';

/** A new signing secret, as Standard Webhooks writes them: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** The key bytes of a `whsec_` secret, or undefined if it is not one (24 to 64 bytes). */
export function webhookSecretKey(secret: string): Buffer | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return undefined;
  const body = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return undefined;
  const key = Buffer.from(body, 'base64');
  return key.length >= 24 && key.length <= 64 ? key : undefined;
}

/**
 * The Standard Webhooks headers of one try: `webhook-signature` is `v1,` + base64 HMAC-SHA256 of
 * `id.timestamp.body` under the secret's key; receivers refuse old timestamps (replays).
 */
export function signWebhook(key: Buffer, id: string, timestampSeconds: number, body: string): Record<string, string> {
  const signature = createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': `v1,${signature}`,
  };
}

/**
 * IPv4 ranges that are not the public internet: this host, private networks, carrier-grade NAT,
 * link-local (cloud metadata), benchmarking, multicast and reserved, and Azure's host endpoint. Webhooks may not
 * reach them, nor may jobs (docs/security.md), unless the operator allows a range.
 */
export const NON_PUBLIC_IPV4: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
  // Azure's host endpoint (WireServer): public space, but the machine's own, like metadata.
  ['168.63.129.16', 32],
];

/** Addresses no webhook may reach unless allowed by config: loopback, private, link-local (cloud metadata), and the like. */
const BLOCKED = new BlockList();
for (const [net, bits] of NON_PUBLIC_IPV4) BLOCKED.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const)
  BLOCKED.addSubnet(net, bits, 'ipv6');

/** Which addresses webhooks may reach: public ones, and the private ranges the operator allowed (WEBHOOK_ALLOWED_CIDRS). */
export class WebhookAddressPolicy {
  private readonly allowed = new BlockList();

  /** `cidrs`: comma-separated, e.g. `127.0.0.1/32,10.1.0.0/16`. */
  constructor(cidrs = '') {
    for (const entry of cidrs
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean)) {
      const [net = '', bits] = entry.split('/');
      const family = isIP(net) === 6 ? 'ipv6' : 'ipv4';
      this.allowed.addSubnet(net, Number(bits ?? (family === 'ipv6' ? 128 : 32)), family);
    }
  }

  /** Why an address may not be reached, or undefined if it may. */
  refusal(address: string): string | undefined {
    const family: 'ipv4' | 'ipv6' = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    // An IPv4 address written as IPv6 (::ffff:a.b.c.d) is judged as the IPv4 one.
    const mapped = family === 'ipv6' && /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    const [ip, kind] = mapped ? [mapped, 'ipv4' as const] : [address, family];
    if (this.allowed.check(ip, kind)) return undefined;
    if (BLOCKED.check(ip, kind)) return `${address} is a private, loopback or link-local address (allow it with WEBHOOK_ALLOWED_CIDRS)`;
    return undefined;
  }

  /**
   * A `lookup` for http.request that refuses a host resolving to a refused address: the check is on
   * the address actually connected to, so a name that resolves elsewhere later (DNS rebinding) gains nothing.
   */
  guardedLookup(): (
    hostname: string,
    options: object,
    callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
  ) => void {
    return (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err, []);
        const list = addresses;
        for (const { address } of list) {
          // The address itself is not said: it would map the operator's network for whoever owns the URL.
          if (this.refusal(address))
            return callback(new Error(`${hostname} resolves to a refused (private, loopback or link-local) address`), []);
        }
        const all = (options as { all?: boolean }).all;
        if (all) return callback(null, list);
        const first = list[0];
        if (!first) return callback(new Error(`${hostname} has no address`), []);
        callback(null, first.address, first.family);
      });
    };
  }

  /** Resolves a URL's host and says why it may not be reached, or undefined (for checking a URL when it is saved). */
  async urlRefusal(url: URL): Promise<string | undefined> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) return this.refusal(host);
    const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
      dnsLookup(host, { all: true }, (err, list) => (err ? reject(err) : resolve(list))),
    ).catch((err: Error) => err);
    if (addresses instanceof Error) return `${host} does not resolve (${addresses.message})`;
    if (addresses.some(({ address }) => this.refusal(address)))
      return `${host} resolves to a private, loopback or link-local address (allow its range with WEBHOOK_ALLOWED_CIDRS)`;
    return undefined;
  }
}

/** Work on the webhooks queue: fan an event out, or deliver one message. */
export type WebhookWork =
  | { kind: 'job-ended'; jobId: string }
  | { kind: 'job-event'; jobId: string; event: WebhookEvent }
  | { kind: 'deliver'; deliveryId: string };

/** Queues an event of a job that has not ended (`approval_required`, `approved`), once per job and event. */
export async function queueJobEvent(queue: Pick<Queue, 'add'>, jobId: string, event: WebhookEvent): Promise<void> {
  await queue.add('job-event', { kind: 'job-event', jobId, event } satisfies WebhookWork, {
    jobId: `${event}.${jobId}`,
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: 1_000,
    removeOnFail: 10_000,
  });
}

/** Queues the fan-out of a job's end to its tenant's webhooks (once per job: the BullMQ id is derived from it). */
export async function queueJobEndedEvent(queue: Pick<Queue, 'add'>, jobId: string): Promise<void> {
  await queue.add('job-ended', { kind: 'job-ended', jobId } satisfies WebhookWork, {
    jobId: `ended.${jobId}`,
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: 1_000,
    removeOnFail: 10_000,
  });
}

/** How deliveries are retried: WEBHOOK_MAX_ATTEMPTS tries, waits doubling from WEBHOOK_RETRY_DELAY_MS. */
export interface DeliveryRetries {
  attempts: number;
  delayMs: number;
}

/** Queues one delivery; `round` tells a redelivery's queue entry from the first one's (same message id). */
export async function queueDelivery(queue: Pick<Queue, 'add'>, deliveryId: string, retries: DeliveryRetries, round = 0): Promise<void> {
  await queue.add('deliver', { kind: 'deliver', deliveryId } satisfies WebhookWork, {
    jobId: round === 0 ? deliveryId : `${deliveryId}.r${round}`,
    attempts: retries.attempts,
    backoff: { type: 'exponential', delay: retries.delayMs },
    removeOnComplete: 1_000,
    removeOnFail: 10_000,
  });
}

/** Re-seals every webhook secret not sealed with the active key (after a CREDENTIALS_KEY rotation); idempotent. */
export async function resealWebhookSecrets(models: Pick<Models, 'Webhook'>, keyring: Keyring): Promise<number> {
  const stale = await models.Webhook.find({ 'sealedSecret.keyId': { $ne: keyring.active.id } }).lean<WebhookDoc[]>();
  for (const doc of stale) {
    const secret = keyring.open(doc.sealedSecret, doc._id);
    await models.Webhook.updateOne(
      { _id: doc._id, 'sealedSecret.keyId': doc.sealedSecret.keyId },
      { $set: { sealedSecret: keyring.seal(secret, doc._id) } },
    );
  }
  return stale.length;
}

/** The most messages a webhook's delivery log keeps; older ones go as new ones come. */
export const DELIVERIES_KEPT = 1_000;

/** Drops a webhook's oldest messages past DELIVERIES_KEPT. */
export async function trimDeliveries(models: Pick<Models, 'WebhookDelivery'>, webhookId: string): Promise<void> {
  const past = await models.WebhookDelivery.find({ webhookId }, { _id: 1 })
    .sort({ createdAt: -1, _id: -1 })
    .skip(DELIVERIES_KEPT)
    .limit(1_000)
    .lean<{ _id: string }[]>();
  if (past.length > 0) await models.WebhookDelivery.deleteMany({ _id: { $in: past.map((d) => d._id) } });
}
