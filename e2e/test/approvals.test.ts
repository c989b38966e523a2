import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import t from 'tap';
import { gzipSync } from 'node:zlib';
import { sampleCredentials } from '@pds/devkit';
import { gunzipStored } from '@pds/shared';
import {
  createResource,
  fileSetManifest,
  queueJob,
  replaceResource,
  startStack,
  storedLines,
  waitForAudit,
  waitForJob,
} from './harness.js';

const ended = (d: { status: string }) => !['queued', 'awaiting_approval', 'approved', 'running'].includes(d.status);

/** A running system, a caller (the platform admin's token unless another is given), and an approver's token. */
async function gatedStack(t: Parameters<typeof startStack>[0]) {
  const stack = await startStack(t);
  const call = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: object, token?: string) =>
    stack.api.inject({
      method,
      url,
      headers: token ? { authorization: `Bearer ${token}` } : stack.auth,
      ...(payload ? { payload } : {}),
    });
  const approver = (await call('POST', '/v1/tokens', { name: 'approver', role: 'admin' })).json().token as string;
  return { stack, call, approver };
}

t.test(
  'approval-gated ups: preview, wait holding the stack, apply what was approved; stale, rejected and cancelled ones apply nothing',
  async (t) => {
    const { stack, call, approver } = await gatedStack(t);
    const deployer = (await call('POST', '/v1/tokens', { name: 'deployer', role: 'deployer' })).json().token as string;
    t.equal((await call('PUT', '/v1/tenants/default/policy', { approvals: { operations: ['up'], requiredApprovals: 1 } })).statusCode, 200);

    // Approved: the plan is shown, later jobs wait behind it, the creator cannot approve, an approver can.
    const dir = join(stack.scratch, 'gated');
    const resource = await createResource(stack, fileSetManifest('gated', dir, [{ path: 'a.txt', content: 'one' }]));
    const up = await queueJob(stack, resource.id, { operation: 'up' });
    t.match(up, {
      status: 'queued',
      approval: { required: 1, allowSelfApproval: false, approverRole: 'admin', previewJobId: String, decisions: [] },
    });
    const waiting = await waitForJob(stack.models, up.id, (d) => d.status !== 'queued', 120_000);
    t.equal(waiting.status, 'awaiting_approval');
    const shown = (await call('GET', `/v1/jobs/${up.id}`)).json();
    t.match(shown.approval.plan, { previewJobId: up.approval.previewJobId, counts: { create: 2 }, stateVersion: null, resourceVersion: 1 });
    t.ok(
      (shown.approval.plan.changes as { urn: string; op: string }[]).some((c) => c.urn.endsWith('::a.txt') && c.op === 'create'),
      'the planned change per resource',
    );
    t.notOk(existsSync(join(dir, 'a.txt')), 'nothing applied yet');
    const behind = await queueJob(stack, resource.id, { operation: 'preview' });
    // The preview holds the stack until its runner lets go, a moment after the gated job waits.
    let blocked = (await call('GET', `/v1/jobs/${behind.id}`)).json();
    for (let tries = 0; blocked.blockedBy !== up.id && tries < 100; tries++) {
      await new Promise((r) => setTimeout(r, 50));
      blocked = (await call('GET', `/v1/jobs/${behind.id}`)).json();
    }
    t.match(blocked, { status: 'queued', blockedBy: up.id }, 'a later job waits behind it');

    const self = await call('POST', `/v1/jobs/${up.id}/approvals`, { decision: 'approve' });
    t.equal(self.statusCode, 403);
    t.match(self.json().message, /created job .* may not decide on it \(policy: approvals\.allowSelfApproval\)/);
    t.equal(
      (await call('POST', `/v1/jobs/${up.id}/approvals`, { decision: 'approve' }, deployer)).statusCode,
      403,
      'a deployer is no approver',
    );
    const approved = await call('POST', `/v1/jobs/${up.id}/approvals`, { decision: 'approve', comment: 'looks right' }, approver);
    t.equal(approved.statusCode, 200, approved.body);
    t.match(approved.json(), {
      status: 'approved',
      approval: { decisions: [{ by: { name: 'approver' }, decision: 'approve', comment: 'looks right' }] },
    });
    const done = await waitForJob(stack.models, up.id, ended, 120_000);
    t.match(
      done,
      { status: 'succeeded', summary: { create: 2 }, approval: { applied: { counts: { create: 2 }, matchesPlan: true, differences: [] } } },
      'it applied the two creates it was approved for',
    );
    t.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'one');
    t.match(await waitForJob(stack.models, behind.id, ended, 120_000), { status: 'succeeded' }, 'the job behind it ran after');
    const audit = await waitForAudit(stack.models, 'job.approval', up.id, 3);
    t.equal(audit.length, 3, 'every decision asked for is audited (two refused, one taken)');

    // Stale: the manifest changed after the preview was approved.
    const stale = await queueJob(stack, resource.id, { operation: 'up' });
    await waitForJob(stack.models, stale.id, (d) => d.status === 'awaiting_approval', 120_000);
    await replaceResource(stack, resource.id, fileSetManifest('gated', dir, [{ path: 'a.txt', content: 'two' }]));
    t.equal((await call('POST', `/v1/jobs/${stale.id}/approvals`, { decision: 'approve' }, approver)).statusCode, 200);
    const staleDone = await waitForJob(stack.models, stale.id, ended, 120_000);
    t.match(staleDone, {
      status: 'stale',
      reason: 'stale',
      error: /nothing was applied: .*the resource's manifest or parameters \(version 1 → 2\) changed/,
    });
    t.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'one', 'nothing applied');

    // Rejected: frees the line at once.
    const rejected = await queueJob(stack, resource.id, { operation: 'up' });
    await waitForJob(stack.models, rejected.id, (d) => d.status === 'awaiting_approval', 120_000);
    const next = await queueJob(stack, resource.id, { operation: 'preview' });
    const no = await call('POST', `/v1/jobs/${rejected.id}/approvals`, { decision: 'reject', comment: 'not today' }, approver);
    t.match(no.json(), { status: 'rejected', reason: 'rejected', result: { error: /rejected by approver: not today/ } });
    t.match(await waitForJob(stack.models, next.id, ended, 120_000), { status: 'succeeded' }, 'the next job ran');
    t.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'one');

    // Cancelled while it waits: the same.
    const cancelled = await queueJob(stack, resource.id, { operation: 'up', requireApproval: true });
    await waitForJob(stack.models, cancelled.id, (d) => d.status === 'awaiting_approval', 120_000);
    t.match((await call('POST', `/v1/jobs/${cancelled.id}/cancel`)).json(), { status: 'cancelled' });
    t.equal(
      (await call('POST', `/v1/jobs/${cancelled.id}/approvals`, { decision: 'approve' }, approver)).statusCode,
      409,
      'no decision on an ended job',
    );
  },
);

t.test(
  "gated destroys and restores: the destroy's preview lists what it deletes; a restore's, what Pulumi would change on the state put back, without touching the stack's own",
  async (t) => {
    const { stack, call, approver } = await gatedStack(t);
    // Only destroy is listed: a restore is gated with it (it can drop resources from the state).
    t.equal((await call('PUT', '/v1/tenants/default/policy', { approvals: { operations: ['destroy'] } })).statusCode, 200);

    const dir = join(stack.scratch, 'gated-state');
    const resource = await createResource(stack, fileSetManifest('gated-state', dir, [{ path: 'a.txt', content: 'one' }]));
    const refused = await call('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'refresh', requireApproval: true });
    t.equal(refused.statusCode, 400);
    t.match(refused.json().message, /requireApproval: only up, destroy, restore jobs are gated \(not refresh\)/);
    const first = await queueJob(stack, resource.id, { operation: 'up' });
    t.notOk(first.approval, 'an up is not gated by this policy');
    t.match(await waitForJob(stack.models, first.id, ended, 120_000), { status: 'succeeded' });
    await replaceResource(
      stack,
      resource.id,
      fileSetManifest('gated-state', dir, [
        { path: 'a.txt', content: 'two' },
        { path: 'b.txt', content: 'new' },
      ]),
    );
    const second = await queueJob(stack, resource.id, { operation: 'up' });
    t.match(await waitForJob(stack.models, second.id, ended, 120_000), { status: 'succeeded' });
    const versions = (await call('GET', `/v1/resources/${resource.id}/stack/versions`)).json().items as { version: number }[];
    const [latest, before] = versions.map((v) => v.version);
    const urnsNow = async () => {
      const read = (await call('GET', `/v1/resources/${resource.id}/stack`)).json();
      return (read.resources as { urn: string }[]).map((r) => r.urn);
    };
    // Every file of the state backend, by content: the restore's preview must leave them as they are.
    const backendFiles = async () => {
      const root = fileURLToPath(stack.config.PULUMI_BACKEND_URL);
      const entries = await readdir(root, { recursive: true, withFileTypes: true });
      const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
      return Object.fromEntries(
        await Promise.all(
          files.sort().map(async (f) => [
            f,
            createHash('sha256')
              .update(await readFile(f))
              .digest('hex'),
          ]),
        ),
      ) as Record<string, string>;
    };
    const beforePreview = await backendFiles();

    // Restore to the first up's state: the preview runs the program (a.txt two, b.txt) against it.
    const restore = await queueJob(stack, resource.id, { operation: 'restore', version: before });
    t.match(restore, { status: 'queued', approval: { previewJobId: String } });
    const waiting = await waitForJob(stack.models, restore.id, (d) => d.status !== 'queued', 120_000);
    t.equal(waiting.status, 'awaiting_approval', waiting.error ?? '');
    const plan = (await call('GET', `/v1/jobs/${restore.id}`)).json().approval.plan;
    const ops = (changes: { urn: string; op: string }[]) => Object.fromEntries(changes.map((c) => [c.urn.split('::').at(-1), c.op]));
    t.match(ops(plan.changes), { 'a.txt': 'update', 'b.txt': 'create' }, 'what Pulumi would change once the state is put back');
    t.match(plan, { counts: { update: 1, create: 1 }, stateVersion: latest });
    t.same(await backendFiles(), beforePreview, "the preview left the stack's own state files as they were");
    t.ok(
      (await urnsNow()).some((u) => u.endsWith('::b.txt')),
      "the stack's own state still has b.txt",
    );
    t.equal((await call('POST', `/v1/jobs/${restore.id}/approvals`, { decision: 'approve' }, approver)).statusCode, 200);
    t.match(await waitForJob(stack.models, restore.id, ended, 120_000), { status: 'succeeded' });
    const restored = await urnsNow();
    t.notOk(
      restored.some((u) => u.endsWith('::b.txt')),
      "after the restore the state is the first up's: no b.txt",
    );
    t.ok(restored.some((u) => u.endsWith('::a.txt')));

    // An import is a restore: gated too. Its preview reads the upload without taking it; a
    // rejection drops it.
    const exported = (await call('GET', `/v1/resources/${resource.id}/stack/export?version=${latest}`)).json();
    const imported = await call('POST', `/v1/resources/${resource.id}/stack/import`, exported);
    t.equal(imported.statusCode, 202, imported.body);
    const importJob = imported.json();
    t.match(importJob, { operation: 'restore', approval: { previewJobId: String } });
    const importHeld = await waitForJob(stack.models, importJob.id, (d) => d.status !== 'queued', 120_000);
    t.equal(importHeld.status, 'awaiting_approval', importHeld.error ?? '');
    t.equal(await stack.models.StateUpload.countDocuments({ resourceId: resource.id }), 1, 'the preview left the upload for the import');
    const rejected = await call('POST', `/v1/jobs/${importJob.id}/approvals`, { decision: 'reject' }, approver);
    t.match(rejected.json(), { status: 'rejected' });
    t.equal(await stack.models.StateUpload.countDocuments({ resourceId: resource.id }), 0, 'a rejected import drops its upload');

    // Destroy: its preview lists the deletions; nothing is deleted before the approval.
    const destroy = await queueJob(stack, resource.id, { operation: 'destroy' });
    const held = await waitForJob(stack.models, destroy.id, (d) => d.status !== 'queued', 120_000);
    t.equal(held.status, 'awaiting_approval', held.error ?? '');
    const destroyPlan = (await call('GET', `/v1/jobs/${destroy.id}`)).json().approval.plan;
    t.match(ops(destroyPlan.changes), { 'a.txt': 'delete' });
    t.notOk(ops(destroyPlan.changes)['b.txt'], 'b.txt is not in the restored state: a destroy would not delete it');
    t.ok(destroyPlan.counts.delete >= 2, 'the counts say how many resources go');
    t.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'two', 'nothing deleted yet');
    t.equal((await call('POST', `/v1/jobs/${destroy.id}/approvals`, { decision: 'approve' }, approver)).statusCode, 200);
    t.match(await waitForJob(stack.models, destroy.id, ended, 120_000), {
      status: 'succeeded',
      approval: { applied: { counts: { delete: destroyPlan.counts.delete }, matchesPlan: true } },
    });
    t.notOk(existsSync(join(dir, 'a.txt')), 'the approved destroy deleted a.txt');
    t.equal(await readFile(join(dir, 'b.txt'), 'utf8'), 'new', 'b.txt, forgotten by the restore, stays in the cloud');
  },
);

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
