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
  const issued = `pds_${'x'.repeat(43)}`;
  const auth = createAuthenticator({
    adminToken: 'admin-token-0123456789-abcdefghijklmnop',
    cacheMs: 1000,
    now: () => now,
    findToken: async (hash) => {
      lookups++;
      return hash === hashToken(issued) ? { id: 't1', name: 'ci', role: 'deployer', revokedAt: token.revokedAt } : null;
    },
  });
  t.match(await auth.authenticate('admin-token-0123456789-abcdefghijklmnop'), { ok: true, principal: { role: 'platform' } });
  const principal = await auth.authenticate(issued);
  t.match(
    principal,
    { ok: true, principal: { id: 't1', role: 'deployer', tenant: 'default' } },
    'a token without a tenant is in the default one',
  );
  token.revokedAt = new Date();
  t.match(await auth.authenticate(issued), { ok: true }, 'still cached');
  t.equal(lookups, 1);
  now = 1001;
  t.match(await auth.authenticate(issued), { ok: false, message: /revoked/ });
  t.match(await auth.authenticate(undefined), { ok: false, message: /missing/ });
});

t.test('a token not in the issued format is refused without a lookup', async (t) => {
  let lookups = 0;
  const auth = createAuthenticator({ findToken: async () => (lookups++, null) });
  for (const token of ['pds_short', 'x'.repeat(47), `pds_${'a'.repeat(42)}!`, `pds_${'a'.repeat(44)}`, '']) {
    t.match(await auth.authenticate(token), { ok: false, message: /not valid/ }, JSON.stringify(token));
  }
  t.equal(lookups, 0);
  t.match(await auth.authenticate(`pds_${'a'.repeat(43)}`), { ok: false, message: /not valid/ });
  t.equal(lookups, 1, 'a well-formed token is looked up');
});

t.test('a spray of unknown tokens does not evict a known one from the cache', async (t) => {
  let lookups = 0;
  const good = `pds_${'g'.repeat(43)}`;
  const auth = createAuthenticator({
    cacheEntries: 10,
    cacheMs: 60_000,
    findToken: async (hash) => {
      lookups++;
      return hash === hashToken(good) ? { id: 'g', name: 'good', role: 'viewer' } : null;
    },
  });
  t.match(await auth.authenticate(good), { ok: true });
  for (let i = 0; i < 1_000; i++) await auth.authenticate(`pds_${String(i).padStart(43, 'r')}`);
  const before = lookups;
  t.match(await auth.authenticate(good), { ok: true, principal: { id: 'g' } });
  t.equal(lookups, before, 'the known token was still cached');
});

t.test('a principal can be checked again by its token hash, the bootstrap token too', async (t) => {
  const admin = 'a'.repeat(40);
  const auth = createAuthenticator({ adminToken: admin, findToken: async () => null });
  const outcome = await auth.authenticate(admin);
  t.match(outcome, { ok: true, principal: { id: 'admin-token' } });
  t.match(await auth.byHash(hashToken(admin)), { ok: true, principal: { role: 'platform' } });
  t.match(await auth.byHash(hashToken('other')), { ok: false });
  t.match(await auth.byHash('not-hex'), { ok: false });
  const without = createAuthenticator({ findToken: async () => null });
  t.match(await without.authenticate(admin), { ok: false }, 'a service without ADMIN_TOKEN does not accept one');
});

t.test('a kubeconfig is masked by its secret values, not line by line: `users:` stays readable', async (t) => {
  const kubeconfig = [
    'apiVersion: v1',
    'clusters:',
    '  - name: prod',
    '    cluster: { server: "https://k8s.example.internal", certificate-authority-data: Q0FDRVJUSUZJQ0FURURBVEE= }',
    'contexts:',
    '  - name: prod',
    '    context: { cluster: prod, user: deployer }',
    'current-context: prod',
    'users:',
    '  - name: deployer',
    '    user: { token: "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.sig", client-key-data: S0VZREFUQUtFWURBVEFLRVk= }',
  ].join('\n');
  const fragments = secretFragments({ kubeconfig });
  for (const secret of ['eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.sig', 'S0VZREFUQUtFWURBVEFLRVk=']) {
    t.ok(fragments.includes(secret), `${secret.slice(0, 12)}… is masked`);
  }
  for (const ordinary of ['users:', 'clusters:', '  - name: deployer', 'current-context: prod', 'https://k8s.example.internal']) {
    t.notOk(fragments.includes(ordinary.trim()), `"${ordinary.trim()}" is not`);
  }
});

t.test('every secret is also masked in its JSON-escaped, URL-encoded, hex and base64 forms', async (t) => {
  const secret = 'p@ss/word+"quoted"\\x';
  const fragments = secretFragments({ secretAccessKey: secret });
  for (const form of [
    JSON.stringify(secret).slice(1, -1),
    encodeURIComponent(secret),
    Buffer.from(secret).toString('hex'),
    Buffer.from(secret).toString('base64'),
  ]) {
    t.ok(fragments.includes(form), form);
  }
});

t.test('a secret shorter than 8 characters is refused when stored: it could not be masked', async (t) => {
  t.throws(() => checkCredentialFields('cloudflare', { apiToken: 'abc' }), /apiToken: must be at least 8 characters/);
  t.ok(checkCredentialFields('cloudflare', { apiToken: 'abcdefghijklmnopqrstuv' }), 'a long one passes on to the provider checks');
});
