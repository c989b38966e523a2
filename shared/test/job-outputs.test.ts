import t from 'tap';
import { decodeOutputs, encodeOutputs, OUTPUTS_MAX_BYTES } from '../src/models/stack-job.js';

t.test('stack outputs keep keys the store refuses as field names, and a bounded size', async (t) => {
  const outputs = { 'app.kubernetes.io/name': 'web', $ref: { 'a.b': [1, 2] } };
  t.same(decodeOutputs(encodeOutputs(outputs)), outputs, 'dotted and $ keys survive');
  t.same(decodeOutputs({ directory: '/tmp/x' }), { directory: '/tmp/x' }, 'a document of an earlier version holds an object');
  t.same(decodeOutputs(undefined), {});
  const huge = { blob: 'x'.repeat(OUTPUTS_MAX_BYTES) };
  t.match(
    decodeOutputs(encodeOutputs(huge)),
    { truncated: /exceed 1048576 bytes.*pulumi stack output/ },
    'too large: a note, not a failed job',
  );
});
