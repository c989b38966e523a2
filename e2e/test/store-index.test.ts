import { testMongo } from '@pds/devkit/tap';
import mongoose from 'mongoose';
import t from 'tap';

/**
 * The embedded store (FerretDB 1.24 on SQLite, built with scripts/patches/ferretdb-sqlite-id-index.patch)
 * answers a query by `_id` from the `_id` index, also when the filter holds more than the `_id`
 * (scripts/patches/ferretdb-sqlite-id-pushdown.patch). Unpatched, it compares a different expression than
 * the index holds and scans the whole collection: every claim, result write, job read and token
 * check got slower with every job ever run (issue #15).
 */
t.test(
  'a lookup by _id uses the _id index, not a scan',
  { skip: process.env.MONGO_URL ? 'MONGO_URL is set: not the embedded FerretDB' : false },
  async (t) => {
    const connection = await mongoose.createConnection(await testMongo(t)).asPromise();
    t.teardown(() => connection.close());
    const jobs = connection.collection('stackjobs');
    await jobs.insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: `job-${i}` as never, status: 'succeeded' })));
    const plan = async (filter: Record<string, unknown>) => {
      const explained = await connection.db!.command({ explain: { find: 'stackjobs', filter } });
      return ((explained.queryPlanner as { Plan?: string[] }).Plan ?? []).join('\n');
    };
    const byId = await plan({ _id: 'job-7' });
    t.match(byId, /SEARCH .* USING INDEX \S+_id_/, `a lookup by _id searches the index:\n${byId}`);
    t.notMatch(byId, /\bSCAN\b/, 'and scans nothing');
    const conditional = await plan({ _id: 'job-7', status: 'running', $or: [{ fence: 1 }, { fence: { $exists: false } }] });
    t.match(
      conditional,
      /SEARCH .* USING INDEX \S+_id_/,
      `so does a conditional one (how a runner claims and ends a job):\n${conditional}`,
    );
    t.match(
      await plan({ status: 'succeeded' }),
      /\bSCAN\b/,
      'the control: a filter on another field scans (FerretDB 1.x pushes down _id only)',
    );
    t.equal((await jobs.findOne({ _id: 'job-7' as never }))?.status, 'succeeded', 'and finds the document');
    const claimed = await jobs.updateOne({ _id: 'job-7' as never, status: 'running' }, { $set: { status: 'failed' } });
    t.equal(claimed.matchedCount, 0, 'the rest of a conditional filter still applies');
    t.equal((await jobs.updateOne({ _id: 'job-7' as never, status: 'succeeded' }, { $set: { status: 'cancelled' } })).modifiedCount, 1);
  },
);
