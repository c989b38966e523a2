/**
 * Drift remediation under approvals, and the spread of scheduled checks (split from drift.test.ts,
 * so that neither file comes near the suite's per-file timeout).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { driftSpreadMs, type StackJobDoc, storeApiToken } from '@pds/shared';
import t from 'tap';
import { createResource, fileSetManifest, queueJob, startStack, storedLines, waitForJob } from './harness.js';

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
