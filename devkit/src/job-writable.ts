import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A file every job may append to, whatever its slot uid (the stand-in CLI logs its runs there): the
 * folder is opened to passers-through (0711) and the file made writable by all. For tests and
 * benches only.
 */
export function jobWritableFile(dir: string, name: string): string {
  chmodSync(dir, 0o711);
  const path = join(dir, name);
  writeFileSync(path, '', { mode: 0o666 });
  chmodSync(path, 0o666);
  return path;
}
