import t from 'tap';
import { createAuthenticator, hashToken } from '../src/auth.js';
import { checkCredentialFields, credentialFingerprint, secretFragments } from '../src/providers.js';
import { Keyring } from '../src/secret-box.js';

const key = (fill: number) => Buffer.alloc(32, fill).toString('base64');

t.test('the keyring seals with the active key and opens with any known key; tampering is detected', async (t) => {
  const old = new Keyring(key(1));
  const sealed = old.seal('s3cret value', 'cred-1');
  t.equal(sealed.keyId, old.active.id);
  t.notMatch(JSON.stringify(sealed), 's3cret');
  t.equal(old.open(sealed, 'cred-1'), 's3cret value');
  const rotated = new Keyring(key(2), [key(1)]);
  t.equal(rotated.open(sealed, 'cred-1'), 's3cret value', 'a previous key still opens');
  t.not(rotated.seal('x', 'c').keyId, sealed.keyId, 'new seals use the new key');
  t.throws(() => old.open({ ...sealed, data: Buffer.from('garbage!').toString('base64') }, 'cred-1'), 'a changed ciphertext does not open');
  t.throws(() => old.open(sealed, 'cred-2'), 'another credential id does not open');
  t.throws(() => new Keyring(Buffer.alloc(16).toString('base64')), /must be 32 bytes/);
  t.equal(Keyring.fromConfig({}), undefined);
});

t.test('secret fragments cover values, their lines, JSON strings inside and base64, but not settings', async (t) => {
  const fragments = secretFragments(
    { key: JSON.stringify({ private_key: '-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----', project_id: 'my-project' }) },
    { projectId: 'my-project' },
  );
  t.ok(fragments.includes('AAAABBBBCCCC'));
  t.notOk(fragments.includes('my-project'), 'a setting is not masked');
  t.ok(
    fragments.some(
      (f) =>
        f ===
        Buffer.from(
          JSON.stringify({ private_key: '-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----', project_id: 'my-project' }),
        ).toString('base64'),
    ),
  );
  t.ok(
    fragments.every((f) => f.length >= 6),
    'short fragments are left out',
  );
});

t.test('credential fields are split into settings and secrets; fingerprints follow the secrets only', async (t) => {
  const { settings, secrets } = checkCredentialFields('cloudflare', {
    apiToken: 'abcdefghijklmnopqrstuvwxyz',
    accountId: '0123456789abcdef0123456789abcdef',
  });
  t.same(settings, { accountId: '0123456789abcdef0123456789abcdef' });
  t.same(secrets, { apiToken: 'abcdefghijklmnopqrstuvwxyz' });
  t.equal(credentialFingerprint(secrets), credentialFingerprint({ ...secrets }));
  t.not(credentialFingerprint(secrets), credentialFingerprint({ apiToken: 'another-token-value-here' }));
  t.throws(() => checkCredentialFields('cloudflare', { apiToken: 123 }), /apiToken: must be a non-empty string/);
});

t.test('the authenticator caches lookups for its window, then asks the store again', async (t) => {
  let now = 0;
  let lookups = 0;
  const token: { revokedAt?: Date } = {};
  const auth = createAuthenticator({
    adminToken: 'admin-token-0123456789',
    cacheMs: 1000,
    now: () => now,
    findToken: async (hash) => {
      lookups++;
      return hash === hashToken('pds_x') ? { id: 't1', name: 'ci', role: 'deployer', revokedAt: token.revokedAt } : null;
    },
  });
  t.match(await auth.authenticate('admin-token-0123456789'), { ok: true, principal: { role: 'admin' } });
  t.match(await auth.authenticate('pds_x'), { ok: true, principal: { id: 't1', role: 'deployer' } });
  token.revokedAt = new Date();
  t.match(await auth.authenticate('pds_x'), { ok: true }, 'still cached');
  t.equal(lookups, 1);
  now = 1001;
  t.match(await auth.authenticate('pds_x'), { ok: false, message: /revoked/ });
  t.match(await auth.authenticate(undefined), { ok: false, message: /missing/ });
});
