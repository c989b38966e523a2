import { join } from 'node:path';
import t from 'tap';
import { startReceiver, verify } from './webhook-receiver.js';
import { createResource, fileSetManifest, queueJob, startStack, waitForJob } from './harness.js';

t.test(
  'a tenant webhook gets every event of its deployments once, signed, after a receiver that failed three tries, and a redelivery',
  async (t) => {
    const stack = await startStack(t, { WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', WEBHOOK_RETRY_DELAY_MS: 50 });
    const receiver = await startReceiver(t, 3);
    const created = await stack.api.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: stack.auth,
      payload: { url: receiver.url, events: ['update_succeeded', 'update_failed'], description: 'chat-ops' },
    });
    t.equal(created.statusCode, 201, created.body);
    const hook = created.json() as { id: string; secret: string; pingDelivery: string };
    t.match(hook.secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'the secret is shown on creation');
    const shown = (await stack.api.inject({ method: 'GET', url: `/v1/webhooks/${hook.id}`, headers: stack.auth })).json();
    t.notOk('secret' in shown, 'and never again');

    const ping = await receiver.accepted((_r, p) => p.type === 'ping');
    t.equal(ping.headers['webhook-id'], hook.pingDelivery);
    t.equal(
      receiver.received.filter((r) => r.headers['webhook-id'] === hook.pingDelivery).length,
      4,
      'three failed tries, then the ping got through',
    );

    const resource = await createResource(
      stack,
      fileSetManifest('hooked', join(stack.scratch, 'hooked'), [{ path: 'a.txt', content: 'one' }]),
    );
    const first = await queueJob(stack, resource.id, { operation: 'up' });
    const preview = await queueJob(stack, resource.id, { operation: 'preview' });
    const second = await queueJob(stack, resource.id, { operation: 'up' });
    const ended = await waitForJob(stack.models, second.id, (d) => d.status === 'succeeded', 120_000);
    const secondEvent = await receiver.accepted((_r, p) => p.data.job?.id === second.id);
    t.comment(`job end → event accepted by the receiver: ${secondEvent.at - ended.finishedAt!.getTime()} ms`);
    const firstEvent = await receiver.accepted((_r, p) => p.data.job?.id === first.id);

    const events = receiver.received
      .filter((r) => r.answered === 204)
      .map((r) => JSON.parse(r.body) as { type: string; data: Record<string, any> });
    const count = (type: string, jobId?: string) => events.filter((e) => e.type === type && e.data.job?.id === jobId).length;
    t.same([count('ping'), count('update_succeeded', first.id), count('update_succeeded', second.id)], [1, 1, 1], 'each once');
    t.equal(events.length, 3, 'nothing else: the preview was not asked for');
    t.notOk(events.some((e) => e.data.job?.id === preview.id));
    const [one, two] = [JSON.parse(firstEvent.body), JSON.parse(secondEvent.body)];
    t.match(one.data, {
      tenant: 'default',
      sequence: Number,
      actor: { name: String },
      resource: { id: resource.id, name: 'hooked', kind: 'LocalFileSet', stackFqdn: resource.stackFqdn },
      job: { id: first.id, operation: 'up', status: 'succeeded', summary: { create: 2 } },
    });
    t.ok(two.data.sequence > one.data.sequence, 'the per-resource sequence orders them');
    for (const r of receiver.received) t.ok(verify(hook.secret, r), `the signature of ${r.headers['webhook-id']} verifies`);

    const logAnswer = await stack.api.inject({ method: 'GET', url: `/v1/webhooks/${hook.id}/deliveries`, headers: stack.auth });
    t.equal(logAnswer.statusCode, 200, logAnswer.body);
    const log = logAnswer.json() as {
      items: { id: string; event: string; status: string; attempts: { statusCode?: number }[] }[];
    };
    const pingLog = log.items.find((d) => d.id === hook.pingDelivery);
    t.match(pingLog, { event: 'ping', status: 'succeeded' });
    t.same(
      pingLog?.attempts.map((a) => a.statusCode),
      [500, 500, 500, 204],
      'the delivery log shows every try',
    );

    const firstId = firstEvent.headers['webhook-id'] as string;
    const redelivered = await stack.api.inject({
      method: 'POST',
      url: `/v1/webhooks/${hook.id}/deliveries/${firstId}/redeliver`,
      headers: stack.auth,
    });
    t.equal(redelivered.statusCode, 202, redelivered.body);
    const again = await receiver.accepted((r) => r.headers['webhook-id'] === firstId && r !== firstEvent);
    t.equal(again.body, firstEvent.body, 'the same message');
    t.ok(verify(hook.secret, again), 'signed anew');
    // The receiver has it; the runner records the try just after: read the log until it shows.
    type Delivery = { id: string; redeliveries: number; status: string; attempts: unknown[] };
    let recorded: Delivery | undefined;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      const page = (await stack.api.inject({ method: 'GET', url: `/v1/webhooks/${hook.id}/deliveries`, headers: stack.auth })).json() as {
        items: Delivery[];
      };
      recorded = page.items.find((d) => d.id === firstId);
      if (recorded?.attempts.length === 2) break;
    }
    t.match(recorded, { redeliveries: 1, status: 'succeeded', attempts: [{}, {}] });
  },
);
