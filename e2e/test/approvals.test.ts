/**
 * Approval-gated jobs, end to end: ups, destroys and restores wait for approval after their preview
 * (approval-plans.test.ts: what an approved job applies against its plan).
 */
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import t from 'tap';
import { gatedStack, hasEnded as ended } from './approval-harness.js';
import { createResource, fileSetManifest, queueJob, replaceResource, waitForAudit, waitForJob } from './harness.js';

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
