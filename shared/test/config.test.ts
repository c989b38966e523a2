import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, loadServiceConfig } from '../src/config.js';

t.test('defaults suit local use', async (t) => {
  const config = loadConfig({});
  t.equal(config.RUNNER_CONCURRENCY, 4);
  t.equal(config.JOB_TIMEOUT_SECONDS, 600);
  t.match(config.PULUMI_BACKEND_URL, /^file:\/\//);
});

t.test('numbers are read from strings and unknown variables ignored', async (t) => {
  const config = loadConfig({ RUNNER_CONCURRENCY: '8', PORT: '8080', UNRELATED: 'x', LOG_LEVEL: 'debug' });
  t.equal(config.RUNNER_CONCURRENCY, 8);
  t.equal(config.PORT, 8080);
  t.equal(config.LOG_LEVEL, 'debug');
});

t.test('a bad value is refused, naming the variable', async (t) => {
  t.throws(() => loadConfig({ RUNNER_CONCURRENCY: 'many' }), ConfigError);
  t.throws(() => loadConfig({ RUNNER_CONCURRENCY: '0' }), /RUNNER_CONCURRENCY/);
  t.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /LOG_LEVEL/);
  t.throws(() => loadConfig({ ADMIN_TOKEN: 'short' }), /ADMIN_TOKEN/);
});

t.test('there is no default ADMIN_TOKEN, and a short or placeholder one is refused', async (t) => {
  t.equal(loadConfig({}).ADMIN_TOKEN, undefined);
  for (const weak of [
    'dev-admin-token-change-me',
    'REPLACE_ME_WITH_A_LONG_RANDOM_TOKEN',
    'x'.repeat(40),
    'your-admin-token-goes-here-0123456789',
    'abababababababababababababababababab',
    'a'.repeat(31),
  ]) {
    t.throws(() => loadConfig({ ADMIN_TOKEN: weak }), /ADMIN_TOKEN/, weak);
  }
  t.ok(loadConfig({ ADMIN_TOKEN: 'Zq3v9Lr0Ts8xPa1Kd7Gm2Wn6Yb4Hc5Je' }).ADMIN_TOKEN);
});

t.test('the API refuses to start without ADMIN_TOKEN; each service keeps only the secrets it uses', async (t) => {
  const key = Buffer.alloc(32, 3).toString('base64');
  const env = { ADMIN_TOKEN: 'Zq3v9Lr0Ts8xPa1Kd7Gm2Wn6Yb4Hc5Je', CREDENTIALS_KEY: key };
  t.throws(() => loadServiceConfig('api', { CREDENTIALS_KEY: key }), /the api needs ADMIN_TOKEN/);
  t.match(loadServiceConfig('api', env), { ADMIN_TOKEN: env.ADMIN_TOKEN, CREDENTIALS_KEY: key });
  const runner = loadServiceConfig('runner', env);
  t.equal(runner.ADMIN_TOKEN, undefined, 'the runner has no ADMIN_TOKEN');
  t.equal(runner.CREDENTIALS_KEY, key);
  const gateway = loadServiceConfig('stream-gateway', env);
  t.equal(gateway.CREDENTIALS_KEY, undefined, 'the gateway has no CREDENTIALS_KEY');
  t.equal(gateway.ADMIN_TOKEN, env.ADMIN_TOKEN);
});

t.test('a secret may be read from NAME_FILE (the Kubernetes way), not from both', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'admin-token');
  writeFileSync(file, 'Zq3v9Lr0Ts8xPa1Kd7Gm2Wn6Yb4Hc5Je\n');
  writeFileSync(join(dir, 'mongo'), 'mongodb://user:pw@db:27017/x');
  const config = loadConfig({ ADMIN_TOKEN_FILE: file, MONGO_URL_FILE: join(dir, 'mongo') });
  t.equal(config.ADMIN_TOKEN, 'Zq3v9Lr0Ts8xPa1Kd7Gm2Wn6Yb4Hc5Je', 'the trailing newline is dropped');
  t.equal(config.MONGO_URL, 'mongodb://user:pw@db:27017/x');
  t.throws(
    () => loadConfig({ ADMIN_TOKEN_FILE: file, ADMIN_TOKEN: 'Zq3v9Lr0Ts8xPa1Kd7Gm2Wn6Yb4Hc5Je' }),
    /ADMIN_TOKEN or ADMIN_TOKEN_FILE/,
  );
  t.throws(() => loadConfig({ CREDENTIALS_KEY_FILE: join(dir, 'missing') }), /CREDENTIALS_KEY_FILE: cannot read .*ENOENT/);
  writeFileSync(file, 'REPLACE_ME_WITH_A_LONG_RANDOM_TOKEN\n');
  t.throws(() => loadConfig({ ADMIN_TOKEN_FILE: file }), /ADMIN_TOKEN is a placeholder/);
});
