import { mkdtemp, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimePackages } from '@pds/shared';
import t from 'tap';
import { templateProgramDir } from '../src/run/template-program.js';

const sha = (c: string) => c.repeat(64);

t.test("a version's program folder: its compiled files and only the runtime packages, written once", async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'pds-tpl-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  let reads = 0;
  const compiled = [
    { path: 'index.js', content: "exports.pulumi = typeof require('@pulumi/pulumi').Config;\nexports.lib = require('./lib/x').x;\n" },
    { path: 'lib/x.js', content: 'exports.x = 42;\n' },
  ];
  const read = async () => (reads++, compiled);
  // Many slots at once: one folder, never half-written.
  const dirs = await Promise.all(Array.from({ length: 5 }, () => templateProgramDir(work, { sha256: sha('a') }, read)));
  t.same(new Set(dirs), new Set([join(work, 'templates', sha('a'))]));
  const dir = dirs[0]!;
  t.same((await readdir(join(work, 'templates'))).sort(), [sha('a')], 'no temporary folder left');
  t.equal(await readFile(join(dir, 'lib/x.js'), 'utf8'), 'exports.x = 42;\n');
  t.equal((await stat(join(dir, 'index.js'))).mode & 0o777, 0o644, 'readable by the slot uids');
  t.equal((await stat(join(work, 'templates'))).mode & 0o777, 0o711, 'whose parent they cannot list');

  // The program resolves the runtime packages as the runner has them, and nothing else of the runner's.
  const programRequire = createRequire(join(dir, 'package.json'));
  const program = programRequire('./index.js') as { pulumi: string; lib: number };
  t.same(program, { pulumi: 'function', lib: 42 });
  t.same((await readdir(join(dir, 'node_modules'))).sort(), ['@pulumi', 'yaml']);
  t.same(await readdir(join(dir, 'node_modules', '@pulumi')), ['pulumi'], 'only the runtime packages');
  for (const pkg of runtimePackages()) t.equal(await realpath(join(dir, 'node_modules', pkg.name)), await realpath(pkg.dir));

  // Known content is not read again.
  const before = reads;
  await templateProgramDir(work, { sha256: sha('a') }, read);
  t.equal(reads, before);

  await t.rejects(templateProgramDir(work, { sha256: 'nothex' }, read), /has not been checked/);
  await t.rejects(
    templateProgramDir(work, { sha256: sha('b') }, async () => [{ path: '../escape.js', content: '' }]),
    /outside its folder/,
  );
  t.equal(await stat(join(work, 'escape.js')).catch(() => null), null);
  t.same((await readdir(join(work, 'templates'))).sort(), [sha('a')], 'a refused version leaves nothing');
});
