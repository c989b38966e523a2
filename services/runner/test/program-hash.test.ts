import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { programHash } from '../src/run/program-hash.js';

t.test("a program folder's hash changes with its code, not with its node_modules", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pds-program-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'dist'));
  await mkdir(join(dir, 'node_modules', 'dep'), { recursive: true });
  await writeFile(join(dir, 'Pulumi.yaml'), 'name: p\n');
  await writeFile(join(dir, 'dist', 'index.js'), 'exports.a = 1;\n');
  await writeFile(join(dir, 'node_modules', 'dep', 'index.js'), 'one');
  const first = await programHash(dir);
  t.match(first, /^[0-9a-f]{64}$/);
  await writeFile(join(dir, 'node_modules', 'dep', 'index.js'), 'two');
  t.equal(await programHash(dir), first, 'dependencies are not hashed');
  await writeFile(join(dir, 'dist', 'index.js'), 'exports.a = 2;\n');
  t.not(await programHash(dir), first, 'the same version over changed code is a change');
});
