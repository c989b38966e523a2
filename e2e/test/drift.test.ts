import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DRIFT_CHECK_PRIORITY } from '@pds/shared';
import t from 'tap';
import { createResource, fileSetManifest, queueJob, startStack, waitForJob } from './harness.js';
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
