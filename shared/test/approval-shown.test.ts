import t from 'tap';
import { type Approval, approvalAsShown } from '../src/approvals.js';

t.test(
  "API responses and webhooks show the credential an approved plan ran with by name, never its revision (the credential's id and fingerprint)",
  async (t) => {
    const approval: Approval = {
      required: 1,
      allowSelfApproval: false,
      approverRole: 'admin',
      expiresAt: '2026-12-03T00:00:00.000Z',
      previewJobId: 'preview',
      decisions: [],
      plan: {
        previewJobId: 'preview',
        changes: [],
        counts: { create: 1 },
        stateVersion: null,
        resourceVersion: 1,
        templateVersion: '1.0.0',
        credential: { name: 'gcp-prod', revision: 'credential-id:sha256:abcd:settings' },
      },
    };
    const shown = approvalAsShown(approval);
    t.same(shown.plan?.credential, { name: 'gcp-prod' });
    t.notMatch(JSON.stringify(shown), /credential-id|sha256:abcd/, 'no part of the revision');
    t.same(
      { ...shown, plan: { ...shown.plan, credential: undefined } },
      { ...approval, plan: { ...approval.plan, credential: undefined } },
      'the rest as it is',
    );
    const { plan: _, ...withoutPlan } = approval;
    void _;
    t.same(approvalAsShown(withoutPlan), withoutPlan, 'an approval without a plan as it is');
  },
);
