import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  canMove,
  END_PATHS,
  END_REASONS,
  endableFrom,
  type EndPath,
  INFRASTRUCTURE_REASONS,
  isInfrastructureReason,
  TRANSITIONS,
} from '../src/lifecycle/index.js';
import { FINAL_STATUSES, JOB_STATUSES, type JobStatus, WAITING_STATUSES } from '../src/types.js';

t.test('the transition table: every status has a row, final statuses move nowhere, every other status can end', async (t) => {
  t.same(Object.keys(TRANSITIONS).sort(), [...JOB_STATUSES].sort());
  for (const status of FINAL_STATUSES) t.same(TRANSITIONS[status], [], `${status} is final`);
  for (const status of JOB_STATUSES.filter((s) => !FINAL_STATUSES.includes(s))) {
    t.ok(
      (TRANSITIONS[status] as readonly JobStatus[]).some((to) => FINAL_STATUSES.includes(to)),
      `${status} can end`,
    );
  }
  t.ok(canMove('approved', 'running'), 'an approved job runs');
  t.notOk(canMove('awaiting_approval', 'running'), 'a job awaiting its decision never runs');
  t.notOk(canMove('queued', 'approved'), 'only a job awaiting approval is approved');
  t.notOk(canMove('succeeded', 'failed'), 'an ended job stays ended');
});

t.test('each path ends a job only from the statuses it may, into the statuses the table allows', async (t) => {
  for (const [via, path] of Object.entries(END_PATHS) as [EndPath, (typeof END_PATHS)[EndPath]][]) {
    for (const status of path.to) t.ok(endableFrom(via, status).length > 0, `${via} → ${status}`);
  }
  t.same(endableFrom('cancel', 'rejected'), ['awaiting_approval'], 'only a job awaiting its decision is rejected');
  t.same(endableFrom('gate', 'stale'), ['approved'], 'only an approved job goes stale');
  t.same(endableFrom('gate', 'expired'), ['awaiting_approval']);
  t.throws(() => endableFrom('reconciler', 'succeeded'), /cannot end succeeded through the reconciler path/);
  t.throws(() => endableFrom('start', 'cancelled'), /cannot end cancelled through the start path/);
  t.same([...END_PATHS.cancel.from], [...WAITING_STATUSES]);
});

t.test('end reasons: the infrastructure ones lead to recovery, and docs/api.md lists every reason with its statuses', async (t) => {
  t.same([...INFRASTRUCTURE_REASONS].sort(), ['lines_not_persisted', 'lock_lost', 'runner_lost']);
  t.ok(isInfrastructureReason('runner_lost'));
  t.notOk(isInfrastructureReason('internal_error'));
  t.notOk(isInfrastructureReason(undefined));
  const doc = readFileSync(join(import.meta.dirname, '../../../docs/api.md'), 'utf8');
  const table = doc.slice(doc.indexOf('## Why a job ended'), doc.indexOf('## History'));
  const documented = new Map<string, Set<string>>();
  for (const row of table.split('\n').filter((line) => line.startsWith('| `'))) {
    const [statuses, reasons] = row
      .split('|')
      .slice(1, 3)
      .map((cell) => [...cell.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!));
    for (const reason of reasons!)
      for (const status of statuses!) (documented.get(reason) ?? documented.set(reason, new Set()).get(reason)!).add(status);
  }
  for (const [reason, { statuses }] of Object.entries(END_REASONS)) {
    t.ok(documented.has(reason), `${reason} is documented`);
    for (const status of statuses) t.ok(documented.get(reason)?.has(status), `${reason} with ${status} is documented`);
  }
  for (const reason of documented.keys()) t.ok(reason in END_REASONS, `the documented ${reason} is an END_REASON`);
});
