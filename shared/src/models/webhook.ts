import { randomUUID } from 'node:crypto';
import { type Connection, Schema } from 'mongoose';
import type { SealedSecret } from '../secret-box.js';

/**
 * A tenant's webhook: where events go, which ones, and the signing secret (sealed with the
 * credentials key, as credentials are; never returned after its creation).
 */
export const webhookSchema = new Schema(
  {
    _id: { type: String, default: () => randomUUID() },
    tenantId: { type: String, required: true },
    url: { type: String, required: true },
    description: { type: String, default: '' },
    events: { type: [String], default: [] },
    active: { type: Boolean, default: true },
    sealedSecret: { type: { _id: false, keyId: String, iv: String, tag: String, data: String }, required: true },
    createdBy: { type: String, required: true },
  },
  { timestamps: true, versionKey: false },
);
webhookSchema.index({ tenantId: 1 });

export interface WebhookDoc {
  _id: string;
  tenantId: string;
  url: string;
  description: string;
  events: string[];
  active: boolean;
  sealedSecret: SealedSecret;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

/** One try at delivering a message. */
export interface DeliveryAttempt {
  at: Date;
  statusCode?: number;
  error?: string;
  durationMs: number;
}

/**
 * One message to one webhook, and every try at delivering it. Its `_id` is the message id receivers
 * see (`webhook-id`), the same on every try and redelivery, so they can drop a repeat.
 */
export const webhookDeliverySchema = new Schema(
  {
    _id: { type: String, required: true },
    webhookId: { type: String, required: true },
    tenantId: { type: String, required: true },
    /** The event this message carries (`update_succeeded`, `ping`, …). */
    event: { type: String, required: true },
    /** The body as sent (JSON text), signed anew on every try. */
    payload: { type: String, required: true },
    status: { type: String, enum: ['pending', 'succeeded', 'failed', 'cancelled'], default: 'pending' },
    attempts: { type: [{ _id: false, at: Date, statusCode: Number, error: String, durationMs: Number }], default: [] },
    /** How many times a person asked for it again. */
    redeliveries: { type: Number, default: 0 },
    deliveredAt: { type: Date },
  },
  { timestamps: true, versionKey: false },
);
webhookDeliverySchema.index({ webhookId: 1, createdAt: -1 });

export interface WebhookDeliveryDoc {
  _id: string;
  webhookId: string;
  tenantId: string;
  event: string;
  payload: string;
  status: 'pending' | 'succeeded' | 'failed' | 'cancelled';
  attempts: DeliveryAttempt[];
  redeliveries: number;
  deliveredAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

/** Per-resource event counters: each event about a resource gets the next number (`sequence`), so receivers can order them. */
export const eventCounterSchema = new Schema(
  { _id: { type: String, required: true }, seq: { type: Number, default: 0 } },
  { versionKey: false },
);

export function webhookModel(connection: Connection) {
  return connection.model('Webhook', webhookSchema, 'webhooks');
}

export function webhookDeliveryModel(connection: Connection) {
  return connection.model('WebhookDelivery', webhookDeliverySchema, 'webhook_deliveries');
}

export function eventCounterModel(connection: Connection) {
  return connection.model('EventCounter', eventCounterSchema, 'event_counters');
}
