import { connect } from 'node:net';
import { startLocalRedis } from '@pds/devkit';
import t from 'tap';

/** Sends one inline Redis command on a fresh connection; answers the first reply line. */
function ask(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('error', reject);
    socket.once('data', (data) => {
      socket.destroy();
      resolve(String(data).split('\r\n')[0] ?? '');
    });
    socket.write(`${command}\r\n`);
  });
}

/** The embedded default's Redis (npm run demo / dev) takes a password made for its data folder. */
t.test('a local Redis with a password refuses clients without it', async (t) => {
  const redis = await startLocalRedis({ password: 'a-password-made-for-this-test' });
  t.teardown(() => redis.stop());
  t.match(await ask(redis.port, 'PING'), /^-NOAUTH/, 'no password: refused');
  t.match(await ask(redis.port, 'PSUBSCRIBE *'), /^-NOAUTH/, 'no subscribing to every job either');
  t.match(await ask(redis.port, 'AUTH a-wrong-password'), /^-WRONGPASS/, 'a wrong one: refused');
  t.equal(await ask(redis.port, 'AUTH a-password-made-for-this-test'), '+OK', 'its own: accepted');
  t.match(redis.url, /^redis:\/\/:a-password-made-for-this-test@127\.0\.0\.1:\d+$/, 'the URL the services get carries it');
  t.notMatch(redis.shownUrl, /a-password/, 'the URL that is printed does not');
});
