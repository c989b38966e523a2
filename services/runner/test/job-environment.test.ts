import t from 'tap';
import { masker } from '../src/job-credential.js';
import { inheritedEnvironment } from '../src/pulumi/pulumi-run.js';

t.test("a job's processes never inherit the runner's own secrets or connection strings", async (t) => {
  const env = inheritedEnvironment({
    PATH: '/usr/bin',
    ADMIN_TOKEN: 'admin-secret-value',
    CREDENTIALS_KEY: 'key',
    CREDENTIALS_KEY_PREVIOUS: 'old-key',
    MONGO_URL: 'mongodb://user:password@mongo/db',
    REDIS_URL: 'redis://:password@redis:6379',
    PULUMI_ACCESS_TOKEN: 'pul-backend-token',
    AWS_PROFILE: 'state-bucket',
  });
  t.same(
    env,
    { PATH: '/usr/bin', PULUMI_ACCESS_TOKEN: 'pul-backend-token', AWS_PROFILE: 'state-bucket' },
    'backend settings pass, service secrets do not',
  );
});

t.test('the masker replaces every fragment, longest first, and leaves other text alone', async (t) => {
  const mask = masker(['abc.def+ghi', 'abc.def', 'zz(top)']);
  t.equal(mask('x abc.def+ghi y abc.def z zz(top)'), 'x [secret] y [secret] z [secret]');
  t.equal(mask('nothing to see'), 'nothing to see');
  t.equal(masker([])('abc'), 'abc');
});
