import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import t from 'tap';
import { repoRoot } from '../src/config.js';

/** Every .ts file under `dir` (not dist, not node_modules). */
async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return entry.name === 'dist' || entry.name === 'node_modules' ? [] : sources(path);
      return entry.name.endsWith('.ts') ? [path] : [];
    }),
  );
  return nested.flat();
}

/**
 * Redis keys and channels are spelled in shared/src/names.ts only: that is where the stores' users
 * get their rules from (store-users.ts), so a key spelled elsewhere would be refused in production.
 */
t.test('no Redis key or channel is spelled outside names.ts', async (t) => {
  const files = [...(await sources(join(repoRoot, 'shared/src'))), ...(await sources(join(repoRoot, 'services')))].filter(
    (file) => !file.endsWith(join('shared', 'src', 'names.ts')) && !file.includes(`${sep}test${sep}`),
  );
  const spelled: string[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const match of text.matchAll(/['"`](pds|bull):[\w-]/g)) spelled.push(`${relative(repoRoot, file)}: ${match[0]}…`);
  }
  t.ok(files.length > 50, `${files.length} source files read`);
  t.same(spelled, [], 'every key comes from names.ts');
});
