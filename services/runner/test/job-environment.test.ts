import t from 'tap';
import { masker } from '../src/run/job-credential.js';
import { inheritedEnvironment } from '../src/pulumi/pulumi-run.js';

t.test("a job's processes start from an allow-list: never the runner's own secrets, connection strings or anything unnamed", async (t) => {
  const runner = {
    PATH: '/usr/bin',
    LC_ALL: 'C.UTF-8',
    NODE_OPTIONS: '--require /tmp/evil.js',
    SOME_OTHER_SERVICE_SECRET: 'x',
    ADMIN_TOKEN_FILE: '/run/secrets/admin',
    ADMIN_TOKEN: 'admin-secret-value',
    CREDENTIALS_KEY: 'key',
    CREDENTIALS_KEY_PREVIOUS: 'old-key',
    MONGO_URL: 'mongodb://user:password@mongo/db',
    REDIS_URL: 'redis://:password@redis:6379',
    PULUMI_ACCESS_TOKEN: 'pul-backend-token',
    AWS_PROFILE: 'state-bucket',
  };
  t.same(
    inheritedEnvironment(runner),
    { PATH: '/usr/bin', LC_ALL: 'C.UTF-8', PULUMI_ACCESS_TOKEN: 'pul-backend-token' },
    'system basics and the Pulumi Cloud token pass; nothing else',
  );
  t.same(
    inheritedEnvironment(runner, ['AWS_PROFILE']),
    { PATH: '/usr/bin', LC_ALL: 'C.UTF-8', PULUMI_ACCESS_TOKEN: 'pul-backend-token', AWS_PROFILE: 'state-bucket' },
    'a backend variable passes when JOB_ENV_ALLOW names it',
  );
});

t.test('the masker replaces every fragment, longest first, and leaves other text alone', async (t) => {
  const mask = masker(['abc.def+ghi', 'abc.def', 'zz(top)']);
  t.equal(mask('x abc.def+ghi y abc.def z zz(top)'), 'x [secret] y [secret] z [secret]');
  t.equal(mask('nothing to see'), 'nothing to see');
  t.equal(masker([])('abc'), 'abc');
});

t.test('a secret split across two lines is masked on both sides, and ordinary lines are left alone', async (t) => {
  const secret = 'AKIAQWERTYUIOPASDFGHJKLZXCVBNM0123456789';
  const mask = masker([secret]);
  const split = 24;
  t.equal(mask(`key=${secret.slice(0, split)}`), 'key=[secret]', 'the start at the end of a line');
  t.equal(mask(`${secret.slice(split)} (continued)`), '[secret] (continued)', 'the end at the start of the next');
  t.equal(mask(`x ${secret} y`), 'x [secret] y', 'whole, as before');
  t.equal(mask('users:'), 'users:');
  t.equal(mask('an ordinary line that ends in AKIA'), 'an ordinary line that ends in AKIA', 'under 8 characters of it is not enough');
});
