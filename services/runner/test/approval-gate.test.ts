import t from 'tap';
import { checkSavedPlan } from '../src/admission/approval-gate.js';

const urn = (name: string) => `urn:pulumi:dev::p::pkg:index:File::${name}`;
const STACK = 'urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev';

t.test("an update plan is kept only when its changing steps are the preview's (its program could have rewritten it)", async (t) => {
  const preview = { changes: [{ urn: urn('a'), type: 'pkg:index:File', op: 'create' }], counts: { create: 2, same: 1 } };
  const plan = (resourcePlans: Record<string, { steps: string[] }>) => ({ ...preview, savedPlan: JSON.stringify({ resourcePlans }) });
  t.ok(
    'data' in checkSavedPlan(plan({ [STACK]: { steps: ['create'] }, [urn('a')]: { steps: ['create'] }, [urn('b')]: { steps: ['same'] } })),
  );
  t.match(checkSavedPlan(plan({ [urn('a')]: { steps: ['create'] }, [urn('db')]: { steps: ['delete'] } })), {
    problem: /an update plan with changes its preview did not show \(urn:pulumi:dev::p::pkg:index:File::db\)/,
  });
  t.match(checkSavedPlan({ ...preview }), { problem: 'succeeded without saving an update plan' });
  t.match(checkSavedPlan({ ...preview, savedPlan: 'not json' }), { problem: /not JSON/ });
  t.match(checkSavedPlan({ ...preview, savedPlan: '{}' }), { problem: /without resourcePlans/ });
  // A preview listing no more than its cap of changes is checked by count.
  const many = {
    changes: Array.from({ length: 500 }, (_, i) => ({ urn: urn(`f${i}`), type: 't', op: 'create' })),
    counts: { create: 501 },
  };
  const resourcePlans = Object.fromEntries(Array.from({ length: 502 }, (_, i) => [urn(`f${i}`), { steps: ['create'] }]));
  t.match(checkSavedPlan({ ...many, savedPlan: JSON.stringify({ resourcePlans }) }), { problem: /502 > 501/ });
});
