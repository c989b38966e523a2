import t from 'tap';
import {
  appliedVersusPlan,
  approvalOf,
  assertParameterLimits,
  staleness,
  secretParametersOf,
  effectiveSchema,
  assertTemplateAllowed,
  operationRole,
  stackStatusOnEnd,
  stackStatusOnStart,
  type TenantPolicy,
} from '../src/index.js';

t.test('parameter limits name every field that breaks one, and the rule', async (t) => {
  const policy: TenantPolicy = {
    templates: {
      Db: {
        parameters: {
          'spec.size': { minimum: 1, maximum: 4 },
          'spec.tier': { enum: ['small', 'large'] },
          'spec.name': { pattern: '^db-', maxLength: 10 },
          'spec.replicas': { maxItems: 2 },
        },
      },
    },
  };
  const check = (spec: Record<string, unknown>) => () => assertParameterLimits(policy, 'acme', 'Db', { spec });
  t.doesNotThrow(check({ size: 4, tier: 'small', name: 'db-one', replicas: [1] }));
  t.doesNotThrow(check({}), 'what a manifest leaves out is the schema’s business');
  t.throws(check({ size: 5 }), { statusCode: 400, message: "spec.size must be <= 4 (tenant acme's limit)" });
  t.throws(check({ size: 0 }), { message: 'spec.size must be >= 1' });
  t.throws(check({ size: '4' }), { message: 'spec.size must be a number' }, 'no coercion');
  t.throws(check({ tier: 'huge' }), { message: 'spec.tier must be one of "small", "large"' });
  t.throws(check({ name: 'web' }), { message: 'spec.name must match ^db-' });
  t.throws(check({ name: 'db-far-too-long' }), { message: 'spec.name must be at most 10 characters' });
  t.throws(check({ replicas: [1, 2, 3] }), { message: 'spec.replicas must have at most 2 items' });
  t.throws(check({ size: 9, tier: 'x' }), { message: /spec\.size must be <= 4 .*; spec\.tier must be one of/ }, 'all at once');
});

t.test('templates allowed or denied, and the least role per operation', async (t) => {
  t.doesNotThrow(() => assertTemplateAllowed({}, 'acme', 'Db'), 'no policy, no limit');
  t.throws(() => assertTemplateAllowed({ templatesByDefault: 'deny' }, 'acme', 'Db'), {
    statusCode: 409,
    message: /templatesByDefault is deny/,
  });
  t.doesNotThrow(() => assertTemplateAllowed({ templatesByDefault: 'deny', templates: { Db: { allowed: true } } }, 'acme', 'Db'));
  t.throws(() => assertTemplateAllowed({ templates: { Db: { allowed: false } } }, 'acme', 'Db'), {
    message: /templates\.Db\.allowed is false/,
  });
  t.equal(operationRole({}, 'destroy'), 'admin');
  t.equal(operationRole({}, 'up'), 'deployer');
  t.equal(operationRole({ operations: { up: 'admin' } }, 'up'), 'admin');
});

t.test("a stack's life: what each job does to it", async (t) => {
  t.equal(stackStatusOnStart('up'), 'deploying');
  t.equal(stackStatusOnStart('destroy'), 'destroying');
  t.equal(stackStatusOnStart('preview'), undefined);
  t.equal(stackStatusOnEnd('up', 'succeeded'), 'deployed');
  t.equal(stackStatusOnEnd('up', 'failed'), 'failed');
  t.equal(stackStatusOnEnd('up', 'cancelled'), 'failed', 'a cancelled up may have changed things half-way');
  t.equal(stackStatusOnEnd('destroy', 'succeeded'), 'destroyed');
  t.equal(stackStatusOnEnd('destroy', 'failed'), 'failed');
  t.equal(stackStatusOnEnd('refresh', 'succeeded'), undefined);
});

t.test('the effective schema keeps the stricter of each rule', async (t) => {
  const schema = {
    type: 'object',
    properties: {
      size: { type: 'integer', minimum: 1, maximum: 8 },
      tier: { enum: ['s', 'm', 'l'] },
      name: { type: 'string', pattern: '^[a-z]' },
    },
  };
  const policy: TenantPolicy = {
    templates: {
      Db: { parameters: { 'spec.size': { minimum: 0, maximum: 4 }, 'spec.tier': { enum: ['m', 'xl'] }, 'spec.name': { pattern: '^db-' } } },
    },
  };
  const result = effectiveSchema(schema, policy, 'acme', 'Db') as { properties: Record<string, Record<string, unknown>> };
  t.match(result.properties.size, { minimum: 1, maximum: 4 });
  t.same(result.properties.tier!.enum, ['m'], 'the values both allow');
  t.match(result.properties.name, { pattern: '^[a-z]', allOf: [{ pattern: '^db-' }] }, 'both patterns hold');
  t.same(schema.properties.size, { type: 'integer', minimum: 1, maximum: 8 }, "the template's own schema is not changed");
});

t.test('secret parameters are plain top-level strings', async (t) => {
  t.same(secretParametersOf({ type: 'object', properties: { token: { type: 'string', 'x-secret': true }, size: { type: 'integer' } } }), [
    'token',
  ]);
  t.throws(() => secretParametersOf({ properties: { n: { type: 'integer', 'x-secret': true } } }), /must be of type string/);
  t.throws(
    () => secretParametersOf({ properties: { db: { type: 'object', properties: { password: { type: 'string', 'x-secret': true } } } } }),
    /only on top-level properties/,
  );
});

t.test('which operations a policy gates: a restore goes with destroy; a request can add a gate, never waive one', async (t) => {
  const gates = (policy: TenantPolicy, requested = false) =>
    (['up', 'preview', 'refresh', 'destroy', 'restore', 'state-delete'] as const).filter((op) => approvalOf(policy, op, requested));
  t.same(gates({}), []);
  t.same(gates({ approvals: { operations: ['up'] } }), ['up']);
  t.same(gates({ approvals: { operations: ['destroy'] } }), ['destroy', 'restore']);
  t.same(gates({ approvals: { operations: ['restore'] } }), ['restore']);
  t.same(gates({}, true), ['up', 'destroy', 'restore'], 'requireApproval on the others is refused by the API');
  const withPlans: TenantPolicy = { approvals: { operations: ['up', 'destroy'], updatePlans: true } };
  t.equal(approvalOf(withPlans, 'up', false)?.updatePlan, true, 'update plans are for ups');
  t.notOk(approvalOf(withPlans, 'destroy', false)?.updatePlan, 'a destroy has none');
  t.match(approvalOf({ approvals: { operations: ['up'], requiredApprovals: 2, approverRole: 'deployer' } }, 'up', false), {
    required: 2,
    allowSelfApproval: false,
    approverRole: 'deployer',
  });
});

t.test("staleness: an up's manifest and template count; a destroy's or restore's only the state", async (t) => {
  const plan = { previewJobId: 'p', changes: [], counts: {}, stateVersion: 3, resourceVersion: 1, templateVersion: '1.0.0' };
  const now = { stateVersion: 3, resourceVersion: 2, templateVersion: '1.1.0' };
  t.match(staleness(plan, now, 'up'), [/manifest or parameters \(version 1 → 2\)/, /template version \(1\.0\.0 → 1\.1\.0\)/]);
  t.same(staleness(plan, now, 'destroy'), []);
  t.match(staleness(plan, { ...now, stateVersion: 4 }, 'restore'), [/the stack's state \(version 3 → 4\)/]);
  const same = { stateVersion: 3, resourceVersion: 1, templateVersion: '1.0.0' };
  t.match(staleness({ ...plan, programHash: 'aa' }, { ...same, programHash: 'bb' }, 'up'), [
    /the template's program \(its code changed under version 1\.0\.0\)/,
  ]);
  t.same(staleness({ ...plan, programHash: 'aa' }, { ...same, programHash: undefined }, 'up'), [], 'not computed now: not compared');
});

t.test('staleness: the credential the preview ran with must be the one a run opens now, for every operation', async (t) => {
  const same = { stateVersion: 3, resourceVersion: 1, templateVersion: '1.0.0' };
  const plan = { previewJobId: 'p', changes: [], counts: {}, ...same, credential: { name: 'prod', revision: 'c1:f1:s1' } };
  t.same(staleness(plan, { ...same, credential: { name: 'prod', revision: 'c1:f1:s1' } }, 'up'), []);
  t.match(staleness(plan, { ...same, credential: { name: 'prod', revision: 'c1:f2:s1' } }, 'destroy'), [
    /the credential \(prod, changed or rotated\)/,
  ]);
  t.match(staleness(plan, { ...same, credential: { name: 'sandbox', revision: 'c2:f1:s1' } }, 'up'), [/the credential \(prod → sandbox\)/]);
  t.match(staleness(plan, { ...same, credential: null }, 'restore'), [/the credential \(prod → none\)/]);
  const { credential: _, ...withoutCredential } = plan;
  t.same(
    staleness(withoutCredential, { ...same, credential: null }, 'up'),
    [],
    'a plan without a credential (none, or recorded before): not compared',
  );
});

t.test('applied changes against the approved plan: same is no change; each count that differs is named', async (t) => {
  t.same(appliedVersusPlan({ create: 2, same: 3 }, { create: 2, same: 5 }), { counts: { create: 2 }, matchesPlan: true, differences: [] });
  t.same(appliedVersusPlan({ update: 1, same: 1 }, { update: 2, delete: 1 }), {
    counts: { update: 2, delete: 1 },
    matchesPlan: false,
    differences: ['delete: 1 (approved 0)', 'update: 2 (approved 1)'],
  });
  const a = { urn: 'urn:pulumi:s::p::File::a.txt', op: 'create' };
  const b = { urn: 'urn:pulumi:s::p::File::b.txt', op: 'create' };
  const c = { urn: 'urn:pulumi:s::p::File::c.txt', op: 'create' };
  t.same(
    appliedVersusPlan({ create: 2 }, { create: 2 }, { planned: [a, b], applied: [b, a] }).differences,
    [],
    'the same resources in another order',
  );
  t.same(
    appliedVersusPlan({ create: 2 }, { create: 2 }, { planned: [a, b], applied: [a, c] }),
    {
      counts: { create: 2 },
      matchesPlan: false,
      differences: [`create ${c.urn}: not in the approved plan`, `create ${b.urn}: approved, not applied`],
    },
    'the same counts on other resources are a difference',
  );
  t.same(appliedVersusPlan({ create: 1 }, { update: 1 }, { planned: [a], applied: [{ ...a, op: 'update' }] }).differences, [
    'create: 0 (approved 1)',
    'update: 1 (approved 0)',
    `update ${a.urn}: not in the approved plan`,
    `create ${a.urn}: approved, not applied`,
  ]);
  const many = Array.from({ length: 25 }, (_, i) => ({ urn: `urn:pulumi:s::p::File::f${i}`, op: 'delete' }));
  const capped = appliedVersusPlan({ delete: 25 }, { delete: 25 }, { planned: [], applied: many }).differences;
  t.equal(capped.length, 21, 'at most 20 resources are named');
  t.equal(capped.at(-1), '… and 5 more resources');
});
