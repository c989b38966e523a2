/**
 * What an approved job applies: its preview's saved update plan (and nothing outside it), a per-resource
 * comparison with the plan, and nothing at all when its credential was rotated since the preview.
 * (Split from approvals.test.ts, so that neither file comes near the suite's per-file timeout.)
 */
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { gzipSync } from 'node:zlib';
import { sampleCredentials } from '@pds/devkit';
import { gunzipStored } from '@pds/shared';
import { gatedStack, hasEnded as ended } from './approval-harness.js';
import { createResource, fileSetManifest, queueJob, replaceResource, storedLines, waitForJob } from './harness.js';

t.test(
  "update plans: an approved up applies its preview's saved plan (pulumi up --plan), and fails rather than step outside it",
  async (t) => {
    const { stack, call, approver } = await gatedStack(t);
    const policy = { approvals: { operations: ['up'], updatePlans: true } };
    t.equal((await call('PUT', '/v1/tenants/default/policy', policy)).statusCode, 200);
    const dir = join(stack.scratch, 'planned');
    const resource = await createResource(stack, fileSetManifest('planned', dir, [{ path: 'a.txt', content: 'one' }]));
    const approveWhenWaiting = async (jobId: string) => {
      const waiting = await waitForJob(stack.models, jobId, (d) => d.status !== 'queued', 120_000);
      t.equal(waiting.status, 'awaiting_approval', waiting.error ?? '');
      return () => call('POST', `/v1/jobs/${jobId}/approvals`, { decision: 'approve' }, approver);
    };

    const up = await queueJob(stack, resource.id, { operation: 'up' });
    t.match(up, { approval: { updatePlan: true } });
    const approve = await approveWhenWaiting(up.id);
    const saved = await stack.models.UpdatePlanFile.findById(up.id).lean();
    t.match(saved, { previewJobId: up.approval.previewJobId }, "the preview's update plan is kept for the gated job");
    t.equal((await approve()).statusCode, 200);
    const applied = await waitForJob(stack.models, up.id, ended, 120_000);
    t.match(applied, { status: 'succeeded', summary: { create: 2 }, approval: { applied: { matchesPlan: true } } });
    t.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'one');
    t.ok(
      (await storedLines(stack, up.id)).some((l) => /applying the update plan of its approved preview/.test(l.text ?? '')),
      'the job says it applies the plan',
    );
    t.equal(await stack.models.UpdatePlanFile.countDocuments({ _id: up.id }), 0, 'an applied plan goes');

    // A plan that does not hold the create of c.txt: the up fails at it, and c.txt is never written.
    await replaceResource(
      stack,
      resource.id,
      fileSetManifest('planned', dir, [
        { path: 'a.txt', content: 'one' },
        { path: 'c.txt', content: 'not in the plan' },
      ]),
    );
    const second = await queueJob(stack, resource.id, { operation: 'up' });
    const approveSecond = await approveWhenWaiting(second.id);
    const file = await stack.models.UpdatePlanFile.findById(second.id).lean();
    const plan = JSON.parse(gunzipStored(file!.data)) as { resourcePlans: Record<string, unknown> };
    const planned = Object.keys(plan.resourcePlans);
    const c = planned.find((urn) => urn.endsWith('::c.txt'));
    t.ok(c, `the plan holds c.txt's create (${planned.join(', ')})`);
    delete plan.resourcePlans[c!];
    await stack.models.UpdatePlanFile.updateOne({ _id: second.id }, { $set: { data: gzipSync(JSON.stringify(plan)) } });
    t.equal((await approveSecond()).statusCode, 200);
    const violated = await waitForJob(stack.models, second.id, ended, 120_000);
    t.match(violated, { status: 'failed', reason: 'plan_violation' }, violated.error ?? '');
    t.comment(`what Pulumi said: ${violated.error}`);
    t.notOk(existsSync(join(dir, 'c.txt')), 'nothing outside the plan was applied');
  },
);

t.test(
  'an approved up is compared with its plan per resource: the same counts on another resource are a difference, and said',
  async (t) => {
    const { stack, call, approver } = await gatedStack(t);
    t.equal((await call('PUT', '/v1/tenants/default/policy', { approvals: { operations: ['up'] } })).statusCode, 200);
    const dir = join(stack.scratch, 'per-resource');
    const resource = await createResource(
      stack,
      fileSetManifest('per-resource', dir, [
        { path: 'a.txt', content: 'a' },
        { path: 'b.txt', content: 'b' },
      ]),
    );
    const up = await queueJob(stack, resource.id, { operation: 'up' });
    const waiting = await waitForJob(stack.models, up.id, (d) => d.status !== 'queued', 120_000);
    t.equal(waiting.status, 'awaiting_approval');
    // As if the preview had planned c.txt where the up will create b.txt (a program that does not do the
    // same twice): the counts agree, the resources do not.
    const planned = (waiting.approval as { plan: { changes: { urn: string; type: string; op: string }[] } }).plan.changes;
    const b = planned.find((c) => c.urn.endsWith('::b.txt'));
    t.ok(b, 'the preview planned b.txt');
    const c = { ...b!, urn: b!.urn.replace(/b\.txt$/, 'c.txt') };
    await stack.models.StackJob.updateOne(
      { _id: up.id },
      { $set: { 'approval.plan.changes': planned.map((change) => (change === b ? c : change)) } },
    );
    t.equal((await call('POST', `/v1/jobs/${up.id}/approvals`, { decision: 'approve' }, approver)).statusCode, 200);
    const done = await waitForJob(stack.models, up.id, ended, 120_000);
    t.match(done, {
      status: 'succeeded',
      summary: { create: 3 },
      approval: {
        applied: {
          counts: { create: 3 },
          matchesPlan: false,
          differences: [`create ${b!.urn}: not in the approved plan`, `create ${c.urn}: approved, not applied`],
        },
      },
    });
    t.ok(
      (await storedLines(stack, up.id)).some((l) =>
        /warning: what was applied differs from the approved plan: create .*b\.txt/.test(l.text ?? ''),
      ),
      'the job says so in its output',
    );
  },
);

t.test('an approved job whose credential was rotated since its preview applies nothing: stale', async (t) => {
  const { stack, call, approver } = await gatedStack(t);
  t.equal((await call('PUT', '/v1/tenants/default/policy', { approvals: { operations: ['up'] } })).statusCode, 200);
  const [first, second] = [sampleCredentials().gcp, sampleCredentials().gcp];
  const credential = await call('POST', '/v1/credentials', { name: 'gcp-prod', provider: 'gcp', ...first.fields });
  t.equal(credential.statusCode, 201, credential.body);
  const manifest = 'apiVersion: deploy.pulumi.dev/v1\nkind: GcpServiceAccountCheck\nmetadata:\n  name: sa-gated\nspec: {}\n';
  const resource = await createResource(stack, manifest);
  const awaiting = async () => {
    const up = await queueJob(stack, resource.id, { operation: 'up' });
    const waiting = await waitForJob(stack.models, up.id, (d) => d.status !== 'queued', 120_000);
    t.equal(waiting.status, 'awaiting_approval', waiting.error ?? '');
    return up.id as string;
  };

  const rotatedUnder = await awaiting();
  const shown = (await call('GET', `/v1/jobs/${rotatedUnder}`)).json();
  t.same(shown.approval.plan.credential, { name: 'gcp-prod' }, 'the plan names it (its revision is kept, not shown)');
  const rotated = await call('PUT', `/v1/credentials/${credential.json().id}`, { ...second.fields });
  t.equal(rotated.statusCode, 200, rotated.body);
  t.equal((await call('POST', `/v1/jobs/${rotatedUnder}/approvals`, { decision: 'approve' }, approver)).statusCode, 200);
  const stale = await waitForJob(stack.models, rotatedUnder, ended, 120_000);
  t.match(stale, { status: 'stale', reason: 'stale', error: /the credential \(gcp-prod, changed or rotated\) changed/ });
  t.equal(await stack.models.StackState.countDocuments({ resourceId: resource.id }), 0, 'no state written: nothing ran');

  // Previewed and applied with the same (rotated) credential: it runs, with that key.
  const again = await awaiting();
  t.equal((await call('POST', `/v1/jobs/${again}/approvals`, { decision: 'approve' }, approver)).statusCode, 200);
  const applied = await waitForJob(stack.models, again, ended, 120_000);
  t.equal(applied.status, 'succeeded', applied.error ?? '');
  const key = JSON.parse(second.fields.serviceAccountKey) as { private_key: string };
  t.equal(
    JSON.parse(applied.outputs as string).privateKeySha256,
    createHash('sha256').update(key.private_key).digest('hex'),
    'the up ran with the key its preview saw',
  );
});
