import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { createResource, fileSetManifest, queueJob, replaceResource, startStack, waitForJob } from './harness.js';
import { startReceiver, verify } from './webhook-receiver.js';

const ended = (d: { status: string }) => !['queued', 'awaiting_approval', 'approved', 'running'].includes(d.status);

/** Files one of which cannot be written: `x` is a file and a folder at once, so the up fails half-way. */
const failing = (content: string) => [
  { path: 'a.txt', content },
  { path: 'x', content: 'a file' },
  { path: 'x/y.txt', content: 'in a folder' },
];

t.test(
  'a failed up that asked for compensation: a stack never deployed is destroyed, a deployed one gets its last good run back',
  async (t) => {
    const stack = await startStack(t, { WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', WEBHOOK_RETRY_DELAY_MS: 50 });
    const receiver = await startReceiver(t, 0);
    const hook = await stack.api.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: stack.auth,
      payload: { url: receiver.url, events: ['compensated', 'compensation_failed'] },
    });
    t.equal(hook.statusCode, 201, hook.body);
    const secret = hook.json().secret as string;
    const heard = async (type: string, jobId: string) => {
      const request = await receiver.accepted((_r, p) => p.type === type && p.data.job?.id === jobId);
      return verify(secret, request);
    };

    const freshDir = join(stack.scratch, 'fresh');
    const fresh = await createResource(stack, fileSetManifest('fresh', freshDir, failing('never')));
    const first = await queueJob(stack, fresh.id, { operation: 'up', compensation: 'destroy' });
    const failed = await waitForJob(stack.models, first.id, (d) => d.status === 'failed' && Boolean(d.compensation), 120_000);
    t.match(failed.compensation, { mode: 'destroy', strategy: 'destroy', jobId: String });
    const undo = await waitForJob(stack.models, (failed.compensation as { jobId: string }).jobId, ended, 120_000);
    t.match(undo, { operation: 'destroy', status: 'succeeded', compensates: first.id });
    const settled = await waitForJob(stack.models, first.id, (d) => (d.compensation as { state: string }).state !== 'compensating');
    t.match(settled.compensation, { state: 'compensated' }, 'failed → compensating → compensated');
    t.ok(await heard('compensated', first.id), 'the webhook heard it, signed');
    t.notOk(existsSync(join(freshDir, 'a.txt')), 'what the failed up created is gone');

    const dir = join(stack.scratch, 'kept');
    const kept = await createResource(stack, fileSetManifest('kept', dir, [{ path: 'a.txt', content: 'good' }]));
    await waitForJob(stack.models, (await queueJob(stack, kept.id, { operation: 'up' })).id, (d) => d.status === 'succeeded', 120_000);
    await replaceResource(stack, kept.id, fileSetManifest('kept', dir, failing('bad')));
    const broken = await queueJob(stack, kept.id, { operation: 'up', compensation: 'reapply_last_good' });
    const brokenDone = await waitForJob(stack.models, broken.id, (d) => d.status === 'failed' && Boolean(d.compensation), 120_000);
    t.match(brokenDone.compensation, { mode: 'reapply_last_good', strategy: 'reapply_last_good' });
    const reapply = await waitForJob(stack.models, (brokenDone.compensation as { jobId: string }).jobId, ended, 120_000);
    t.match(
      reapply,
      { operation: 'up', status: 'succeeded', compensates: broken.id, resourceVersion: 1 },
      'the last good run (version 1) again',
    );
    t.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'good', 'the file is as the last good run left it');
    t.match(
      (await waitForJob(stack.models, broken.id, (d) => (d.compensation as { state: string }).state !== 'compensating')).compensation,
      {
        state: 'compensated',
      },
    );
    const view = (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${broken.id}`, headers: stack.auth })).json();
    t.match(
      view,
      { status: 'failed', compensation: { state: 'compensated', jobId: reapply._id } },
      'the API shows it (no stale cached view)',
    );
    t.match(
      (await stack.api.inject({ method: 'GET', url: `/v1/resources/${kept.id}`, headers: stack.auth })).json(),
      { version: 2, stack: { status: 'deployed', resourceVersion: 1 } },
      'the stack runs version 1 of a resource now at version 2',
    );

    // Deployed, but what its up ran is not kept (an earlier version of the service): never destroyed.
    await stack.models.Resource.updateOne({ _id: kept.id }, { $unset: { 'stack.lastGood': 1 } });
    const unkept = await queueJob(stack, kept.id, { operation: 'up', compensation: 'reapply_last_good' });
    const unkeptDone = await waitForJob(stack.models, unkept.id, (d) => d.status === 'failed' && Boolean(d.compensation), 120_000);
    t.match(unkeptDone.compensation, { state: 'compensation_failed', error: /what that up ran was not kept/ });
    t.ok(await heard('compensation_failed', unkept.id), 'compensation_failed reaches the webhook');
    t.notOk((unkeptDone.compensation as { jobId?: string }).jobId, 'no compensating job: a deployed stack is never destroyed for it');

    // A tenant that gates destroys: a compensating destroy waits for approval like any destroy;
    // rejected, it leaves the failed up compensation_failed.
    const policy = { approvals: { operations: ['destroy'], allowSelfApproval: true } };
    t.equal(
      (await stack.api.inject({ method: 'PUT', url: '/v1/tenants/default/policy', headers: stack.auth, payload: policy })).statusCode,
      200,
    );
    const gatedDir = join(stack.scratch, 'gated');
    const gated = await createResource(stack, fileSetManifest('gated', gatedDir, failing('never')));
    const gatedUp = await queueJob(stack, gated.id, { operation: 'up', compensation: 'destroy' });
    const gatedFailed = await waitForJob(stack.models, gatedUp.id, (d) => d.status === 'failed' && Boolean(d.compensation), 120_000);
    const undoId = (gatedFailed.compensation as { jobId: string }).jobId;
    const held = await waitForJob(stack.models, undoId, (d) => d.status !== 'queued', 120_000);
    t.match(
      held,
      { operation: 'destroy', status: 'awaiting_approval', compensates: gatedUp.id },
      'the compensating destroy waits for approval',
    );
    t.ok(existsSync(join(gatedDir, 'a.txt')), 'nothing destroyed before a decision');
    const stillCompensating = await stack.models.StackJob.findById(gatedUp.id).lean();
    t.match(stillCompensating?.compensation, { state: 'compensating' }, "its preview's success is not the compensation's");
    const no = await stack.api.inject({
      method: 'POST',
      url: `/v1/jobs/${undoId}/approvals`,
      headers: stack.auth,
      payload: { decision: 'reject', comment: 'keep it' },
    });
    t.equal(no.statusCode, 200, no.body);
    const unsettled = await waitForJob(stack.models, gatedUp.id, (d) => (d.compensation as { state: string }).state !== 'compensating');
    t.match(unsettled.compensation, { state: 'compensation_failed', error: /the compensating job .* was rejected/ });
    t.ok(await heard('compensation_failed', gatedUp.id), 'and its webhook hears it');
    t.ok(existsSync(join(gatedDir, 'a.txt')), 'the rejected destroy destroyed nothing');
  },
);
