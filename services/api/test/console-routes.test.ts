/**
 * What the API gives the web console: who a token is, the runtime packages' declarations for the
 * template editor (made once; gzipped and revalidated by tag), and the console's own files.
 */
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { auth, startApi } from './harness.js';

t.test('GET /v1/whoami says who the token is', async (t) => {
  const { app } = await startApi(t);
  t.same((await app.inject({ method: 'GET', url: '/v1/whoami', headers: auth })).json(), {
    id: 'admin-token',
    name: 'ADMIN_TOKEN',
    role: 'platform',
  });
  const viewer = (
    await app.inject({ method: 'POST', url: '/v1/tokens', headers: auth, payload: { name: 'reader', role: 'viewer' } })
  ).json();
  t.same((await app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${viewer.token}` } })).json(), {
    id: viewer.id,
    name: 'reader',
    role: 'viewer',
    tenant: 'default',
  });
  t.equal((await app.inject({ method: 'GET', url: '/v1/whoami' })).statusCode, 401);
});

t.test("GET /v1/runtime/types: the runtime packages' declarations, gzipped when asked, revalidated by tag", async (t) => {
  const { app } = await startApi(t);
  const plain = await app.inject({ method: 'GET', url: '/v1/runtime/types', headers: auth });
  t.equal(plain.statusCode, 200);
  t.match(plain.headers['content-type'], /^application\/json/);
  const { files } = plain.json() as { files: { path: string; content: string }[] };
  const paths = files.map((f) => f.path);
  t.ok(paths.includes('file:///node_modules/@pulumi/pulumi/index.d.ts'), '@pulumi/pulumi');
  t.ok(paths.includes('file:///node_modules/yaml/dist/index.d.ts'), 'yaml');
  t.notOk(
    paths.some((p) => p.includes('/proto/') || p.includes('/node_modules/@pulumi/pulumi/node_modules/')),
    'no generated gRPC code, no nested packages',
  );
  t.ok(
    paths.every((p) => p.endsWith('.d.ts') || p.endsWith('/package.json')),
    'declarations and package.json files only',
  );
  t.same(
    Object.keys(JSON.parse(files.find((f) => f.path === 'file:///node_modules/yaml/package.json')?.content ?? '{}')).sort(),
    ['main', 'name', 'version'],
    'package.json without exports',
  );
  const gzipped = await app.inject({ method: 'GET', url: '/v1/runtime/types', headers: { ...auth, 'accept-encoding': 'gzip' } });
  t.equal(gzipped.headers['content-encoding'], 'gzip');
  t.equal(gunzipSync(gzipped.rawPayload).toString(), plain.body, 'the same answer, gzipped');
  t.ok(gzipped.rawPayload.length < plain.rawPayload.length / 3, `${gzipped.rawPayload.length} bytes gzipped of ${plain.rawPayload.length}`);
  const again = await app.inject({
    method: 'GET',
    url: '/v1/runtime/types',
    headers: { ...auth, 'if-none-match': String(plain.headers.etag) },
  });
  t.equal(again.statusCode, 304, 'unchanged: 304');
  t.equal((await app.inject({ method: 'GET', url: '/v1/runtime/types' })).statusCode, 401);
});
