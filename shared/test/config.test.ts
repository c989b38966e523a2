import t from 'tap';
import { ConfigError, loadConfig } from '../src/config.js';

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
