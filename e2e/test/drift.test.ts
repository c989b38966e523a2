import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DRIFT_CHECK_PRIORITY, driftSpreadMs, type StackJobDoc, storeApiToken } from '@pds/shared';
import t from 'tap';
import { createResource, fileSetManifest, queueJob, startStack, storedLines, waitForJob } from './harness.js';
import { startReceiver } from './webhook-receiver.js';

t.test('a drift check reports the file changed by hand, with its path and values; an error is unknown', async (t) => {
  const stack = await startStack(t);
  const dir = join(stack.scratch, 'drifting');
  const resource = await createResource(
    stack,
    fileSetManifest('drifting', dir, [
      { path: 'a.txt', content: 'as deployed' },
      { path: 'b.txt', content: 'b' },
    ]),
  );
  const up = await queueJob(stack, resource.id, { operation: 'up' });
  await waitForJob(stack.models, up.id, (d) => d.status === 'succeeded', 120_000);
  const clean = await queueJob(stack, resource.id, { operation: 'drift-check' });
  const cleanDone = await waitForJob(stack.models, clean.id, (d) => d.status !== 'queued' && d.status !== 'running', 120_000);
  t.match(cleanDone, { status: 'succeeded', drift: { result: 'no_drift', resources: [] } }, 'nothing drifted yet');

  await writeFile(join(dir, 'a.txt'), 'changed by hand');
  const check = await queueJob(stack, resource.id, { operation: 'drift-check' });
  const done = await waitForJob(stack.models, check.id, (d) => d.status !== 'queued' && d.status !== 'running', 120_000);
  t.match(done, {
    status: 'succeeded',
    drift: {
      result: 'drifted',
      resources: [{ urn: /::a\.txt$/, change: 'update', properties: [{ path: 'content', old: 'as deployed', new: 'changed by hand' }] }],
    },
  });
  t.equal((done.drift as { resources: unknown[] }).resources.length, 1, 'only the file changed');
  t.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'changed by hand', 'a check changes nothing');
  t.equal(await stack.models.StackState.countDocuments({ resourceId: resource.id }), 1, 'nor the state: no version is written');
});

t.test('a check that cannot run is unknown, never drifted', async (t) => {
  const stack = await startStack(t);
  const resource = await createResource(stack, fileSetManifest('never-deployed', join(stack.scratch, 'never'), []));
  const check = await queueJob(stack, resource.id, { operation: 'drift-check' });
  const done = await waitForJob(stack.models, check.id, (d) => d.status !== 'queued' && d.status !== 'running', 120_000);
  t.match(done, { status: 'failed', drift: { result: 'unknown', resources: [], error: String } });
});

t.test('a drift schedule finds a file changed by hand, tells the webhook, remediates it, and finds no drift after', async (t) => {
  const stack = await startStack(t, { DRIFT_MIN_INTERVAL_SECONDS: 1, WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', WEBHOOK_RETRY_DELAY_MS: 50 });
  const receiver = await startReceiver(t, 0);
  const hook = await stack.api.inject({
    method: 'POST',
    url: '/v1/webhooks',
    headers: stack.auth,
    payload: { url: receiver.url, events: ['drift_detected', 'drift_detection_succeeded', 'update_succeeded'] },
  });
  t.equal(hook.statusCode, 201, hook.body);
  const dir = join(stack.scratch, 'watched');
  const resource = await createResource(stack, fileSetManifest('watched', dir, [{ path: 'a.txt', content: 'as deployed' }]));
  const up = await queueJob(stack, resource.id, { operation: 'up' });
  await waitForJob(stack.models, up.id, (d) => d.status === 'succeeded', 120_000);

  const url = `/v1/resources/${resource.id}/drift-schedule`;
  const foreign = await stack.api.inject({
    method: 'PUT',
    url,
    headers: stack.auth,
    payload: { cron: '* * * * * *', ignore: [{ urn: 'urn:pulumi:other::p::t::n' }] },
  });
  t.equal(foreign.statusCode, 400);
  t.match(foreign.json().message, /ignore\[0\]\.urn: .* is not a resource of this stack/);
  const set = await stack.api.inject({ method: 'PUT', url, headers: stack.auth, payload: { cron: '* * * * * *', autoRemediate: true } });
  t.equal(set.statusCode, 200, set.body);
  t.match(set.json(), { cron: '* * * * * *', autoRemediate: true, paused: false, nextRunAt: String });

  const clean = await receiver.accepted((_r, p) => p.type === 'drift_detection_succeeded');
  t.match(JSON.parse(clean.body).data, { resource: { id: resource.id }, job: { operation: 'drift-check' }, drift: { result: 'no_drift' } });

  const changedAt = Date.now();
  await writeFile(join(dir, 'a.txt'), 'changed by hand');
  const detected = await receiver.accepted((_r, p) => p.type === 'drift_detected');
  t.comment(`file changed → drift_detected at the receiver: ${detected.at - changedAt} ms`);
  const event = JSON.parse(detected.body);
  t.match(event.data.drift, {
    result: 'drifted',
    resources: [{ urn: /::a\.txt$/, change: 'update', properties: [{ path: 'content', old: 'as deployed', new: 'changed by hand' }] }],
  });
  const checkId = event.data.job.id as string;
  t.equal((await stack.queue.getJob(checkId))?.opts.priority, DRIFT_CHECK_PRIORITY, 'a scheduled check has the lowest priority');
  const check = await waitForJob(stack.models, checkId, (d) => Boolean(d.remediatedBy));
  const fix = await waitForJob(stack.models, check.remediatedBy!, (d) => d.status === 'succeeded', 120_000);
  t.match(fix, { operation: 'up', remediates: checkId });
  t.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'as deployed', 'the remediation put the file back');
  await receiver.accepted((_r, p) => p.type === 'update_succeeded' && p.data.job.id === fix._id);
  const after = await receiver.accepted(
    (r, p) => p.type === 'drift_detection_succeeded' && r.at > Date.parse(String(fix.finishedAt?.toISOString())),
  );
  t.ok(after, 'the next check finds no drift');

  const paused = await stack.api.inject({ method: 'PUT', url, headers: stack.auth, payload: { cron: '* * * * * *', paused: true } });
  t.match(paused.json(), { paused: true, lastCheck: { result: 'no_drift' } });
  t.notOk('nextRunAt' in paused.json(), 'a paused schedule fires no more');
  t.equal((await stack.api.inject({ method: 'DELETE', url, headers: stack.auth })).statusCode, 204);
  t.equal((await stack.api.inject({ method: 'GET', url, headers: stack.auth })).statusCode, 404);
});

/** The first drift check of a resource that queued a remediation, once there is one. */
async function remediatedCheck(stack: Awaited<ReturnType<typeof startStack>>, resourceId: string) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const found = await stack.models.StackJob.findOne({
      resourceId,
      operation: 'drift-check',
      remediatedBy: { $exists: true },
    }).lean<StackJobDoc>();
    if (found) return found;
    if (Date.now() > deadline) throw new Error('no drift check queued a remediation');
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test(
  "a gated remediation acts for whoever set the schedule: that admin's approval is a self-approval, another admin's is not; under update plans it applies its --refresh preview's plan",
  async (t) => {
    const stack = await startStack(t, { DRIFT_MIN_INTERVAL_SECONDS: 1 });
    const dir = join(stack.scratch, 'gated-drift');
    const resource = await createResource(stack, fileSetManifest('gated-drift', dir, [{ path: 'a.txt', content: 'as deployed' }]));
    const up = await queueJob(stack, resource.id, { operation: 'up' });
    await waitForJob(stack.models, up.id, (d) => d.status === 'succeeded', 120_000);
    const policy = { approvals: { operations: ['up'], allowSelfApproval: false, updatePlans: true } };
    const put = await stack.api.inject({ method: 'PUT', url: '/v1/tenants/default/policy', headers: stack.auth, payload: policy });
    t.equal(put.statusCode, 200, put.body);
    const [setter, other] = await Promise.all(
      ['schedule-setter', 'other-admin'].map((name) => storeApiToken(stack.models, { name, role: 'admin', createdBy: 'test' })),
    );
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    const url = `/v1/resources/${resource.id}/drift-schedule`;
    const set = await stack.api.inject({
      method: 'PUT',
      url,
      headers: as(setter!.token),
      payload: { cron: '* * * * * *', autoRemediate: true },
    });
    t.equal(set.statusCode, 200, set.body);

    await writeFile(join(dir, 'a.txt'), 'changed by hand');
    const check = await remediatedCheck(stack, resource.id);
    t.match(check.createdBy, { id: 'drift-schedule', actsFor: setter!.doc.actsFor }, 'the check acts for the admin who set the schedule');
    const fixId = check.remediatedBy!;
    const held = await waitForJob(stack.models, fixId, (d) => d.status === 'awaiting_approval', 120_000);
    t.match(held.createdBy, { actsFor: setter!.doc.actsFor }, 'and so does its remediation');
    const decide = (token: string) =>
      stack.api.inject({ method: 'POST', url: `/v1/jobs/${fixId}/approvals`, headers: as(token), payload: { decision: 'approve' } });
    const self = await decide(setter!.token);
    t.equal(self.statusCode, 403, 'the setter may not approve what its schedule asked for');
    t.match(self.json().message, /acts for the identity that created job/);
    const approved = await decide(other!.token);
    t.equal(approved.statusCode, 200, approved.body);
    const fixed = await waitForJob(stack.models, fixId, (d) => d.status === 'succeeded', 120_000);
    t.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'as deployed', 'approved by another admin, the remediation put the file back');
    // Under updatePlans: its preview (`preview --refresh --save-plan`) saved a plan the up (`up --refresh --plan`) applied.
    t.ok(
      (await storedLines(stack, fixId)).some((l) => /applying the update plan of its approved preview/.test(l.text ?? '')),
      'the remediation applied the update plan of its --refresh preview',
    );
    t.match(fixed.approval, { updatePlan: true, applied: { matchesPlan: true } }, 'and applied what was approved');
    await stack.api.inject({ method: 'DELETE', url, headers: stack.auth });
  },
);

t.test(
  'a scheduled check waits its resource’s own spread after the cron fires, so schedules sharing a cron do not check at once',
  async (t) => {
    const spreadSeconds = 3;
    const stack = await startStack(t, { DRIFT_MIN_INTERVAL_SECONDS: 1, DRIFT_SPREAD_SECONDS: spreadSeconds });
    const cron = '0 0 1 1 *'; // once a year: it never fires by itself during the test; the tick is added below
    // A resource whose spread is long enough to tell a wait from none (two in three are).
    let resource: { id: string } | undefined;
    let spread = 0;
    for (let i = 0; spread < 1_000; i++) {
      const dir = join(stack.scratch, `spread-${i}`);
      resource = await createResource(stack, fileSetManifest(`spread-${i}`, dir, [{ path: 'a.txt', content: 'a' }]));
      spread = driftSpreadMs(resource.id, cron, spreadSeconds);
    }
    t.ok(spread < spreadSeconds * 1000, 'within DRIFT_SPREAD_SECONDS');
    t.equal(driftSpreadMs(resource!.id, cron, spreadSeconds), spread, 'the same wait for the resource every time');
    const up = await queueJob(stack, resource!.id, { operation: 'up' });
    await waitForJob(stack.models, up.id, (d) => d.status === 'succeeded', 120_000);
    const url = `/v1/resources/${resource!.id}/drift-schedule`;
    t.equal((await stack.api.inject({ method: 'PUT', url, headers: stack.auth, payload: { cron } })).statusCode, 200);

    const firedAt = Date.now();
    await stack.driftQueue.add('drift-check', { resourceId: resource!.id });
    const deadline = Date.now() + 30_000;
    let check: StackJobDoc | null = null;
    while (!check && Date.now() < deadline) {
      check = await stack.models.StackJob.findOne({ resourceId: resource!.id, operation: 'drift-check' }).lean<StackJobDoc>();
      if (!check) await new Promise((r) => setTimeout(r, 50));
    }
    t.ok(check, 'the tick queued a check');
    t.ok(
      check!.createdAt.getTime() - firedAt >= spread,
      `queued ${check!.createdAt.getTime() - firedAt} ms after the tick, its spread ${spread} ms`,
    );
    const done = await waitForJob(stack.models, check!._id, (d) => d.status === 'succeeded', 120_000);
    t.match(done.drift, { result: 'no_drift' }, 'and it checked the stack');
    await stack.api.inject({ method: 'DELETE', url, headers: stack.auth });
  },
);
