import t from 'tap';
import { compactEvent, MAX_EVENT_TEXT } from '../src/pulumi/engine-events.js';

t.test('an event message is size-capped: a huge diagnostic is cut and says so', async (t) => {
  const huge = 'x'.repeat(MAX_EVENT_TEXT * 10);
  const event = compactEvent({ sequence: 1, timestamp: 0, diagnosticEvent: { severity: 'error', message: huge, urn: 'urn:x' } });
  const message = String(event?.message);
  t.ok(message.length < MAX_EVENT_TEXT + 200, `${message.length} characters`);
  t.match(message, /\[147456 more characters cut; the full text is in the job's lines\]$/);
  const small = compactEvent({ sequence: 2, timestamp: 0, diagnosticEvent: { severity: 'warning', message: 'careful\n' } });
  t.equal(small?.message, 'careful', 'a short one is as it was');
});
