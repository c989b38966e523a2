/**
 * The console's copy of the service's words (statuses, operations, roles, webhook events): the
 * browser bundle does not import @pds/shared (a server package), so this proves the two still agree.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FINAL_STATUSES, JOB_STATUSES, OPERATIONS, repoRoot, ROLES, WAITING_STATUSES, WEBHOOK_EVENTS } from '@pds/shared';
import { transform } from 'esbuild';
import t from 'tap';

const source = await readFile(join(repoRoot, 'console/src/lib/vocabulary.ts'), 'utf8');
const { code } = await transform(source, { loader: 'ts', format: 'esm' });
const vocabulary = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as Record<string, unknown>;

t.same(vocabulary.JOB_STATUSES, JOB_STATUSES);
t.same(vocabulary.FINAL_STATUSES, FINAL_STATUSES);
t.same(vocabulary.WAITING_STATUSES, WAITING_STATUSES);
t.same(vocabulary.OPERATIONS, OPERATIONS);
t.same(vocabulary.ROLES, ROLES);
t.same(vocabulary.WEBHOOK_EVENTS, WEBHOOK_EVENTS);
