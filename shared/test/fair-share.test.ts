import t from 'tap';
import { DeficitRoundRobin, type Offer } from '../src/dispatch/fair-share.js';

/** Tenants with `jobs` waiting each, none blocked: every offer starts one while any are left. */
function backlog(jobs: Record<string, number>) {
  const left = { ...jobs };
  const started: string[] = [];
  const offer = async (tenant: string): Promise<Offer> => {
    if ((left[tenant] ?? 0) === 0) return { started: false, why: 'empty' };
    left[tenant] = (left[tenant] ?? 0) - 1;
    started.push(tenant);
    return { started: true };
  };
  return { left, started, offer };
}

const count = (list: string[], of: string) => list.filter((x) => x === of).length;

t.test('slots freed one at a time go around the tenants by weight (1:1:2)', async (t) => {
  const turns = new DeficitRoundRobin();
  const { started, offer } = backlog({ a: 500, b: 500, c: 500 });
  const weights: Record<string, number> = { a: 1, b: 1, c: 2 };
  turns.sync(['a', 'b', 'c']);
  for (let i = 0; i < 400; i++) t.equal(await turns.serve(1, (x) => weights[x] ?? 1, offer), 1);
  t.same([count(started, 'a'), count(started, 'b'), count(started, 'c')], [100, 100, 200]);
  t.same(started.slice(0, 8), ['a', 'b', 'c', 'c', 'a', 'b', 'c', 'c'], 'in turn, a weight of 2 taking two in a row');
});

t.test('a tenant arriving behind a flood starts within one turn', async (t) => {
  const turns = new DeficitRoundRobin();
  const { started, offer, left } = backlog({ flood: 500, late: 0 });
  turns.sync(['flood']);
  t.equal(await turns.serve(12, () => 1, offer), 12, 'the flood fills every free slot while alone');
  left.late = 50;
  turns.sync(['flood', 'late']);
  await turns.serve(1, () => 1, offer);
  await turns.serve(1, () => 1, offer);
  t.same(started.slice(12), ['late', 'flood'], "the flood's turn was spent: the next slot is the newcomer's, then they alternate");
});

t.test('a tenant that can start nothing (at its limit, its stacks busy) is passed over and keeps no credit', async (t) => {
  const turns = new DeficitRoundRobin();
  const { started, offer } = backlog({ a: 100, b: 100 });
  let bBlocked = true;
  const blockable = (tenant: string) =>
    tenant === 'b' && bBlocked ? Promise.resolve<Offer>({ started: false, why: 'limit' }) : offer(tenant);
  turns.sync(['a', 'b']);
  t.equal(await turns.serve(10, () => 1, blockable), 10, "b's slots go to a rather than idle");
  t.equal(count(started, 'a'), 10);
  bBlocked = false;
  const before = started.length;
  await turns.serve(4, () => 1, blockable);
  t.same(started.slice(before).sort(), ['a', 'a', 'b', 'b'], 'once free, b gets its share and no saved-up burst');
});

t.test('a round stops when nobody can start anything, and tenants with nothing left leave the turn', async (t) => {
  const turns = new DeficitRoundRobin();
  const { offer } = backlog({ a: 2, b: 1 });
  turns.sync(['a', 'b']);
  t.equal(await turns.serve(10, () => 1, offer), 3, 'three jobs were waiting');
  t.same(turns.order, [], 'both left the turn');
  const busy = async (): Promise<Offer> => ({ started: false, why: 'busy' });
  turns.sync(['a', 'b']);
  t.equal(await turns.serve(10, () => 1, busy), 0, 'every stack busy: the round ends');
  t.same(turns.order.sort(), ['a', 'b'], 'still in the turn, for when a stack frees');
});

t.test('sync keeps the turn where it was, adds newcomers at the end and drops who left', async (t) => {
  const turns = new DeficitRoundRobin();
  const { offer } = backlog({ a: 10, b: 10, c: 10, d: 10 });
  turns.sync(['a', 'b', 'c']);
  await turns.serve(1, () => 1, offer);
  await turns.serve(1, () => 1, offer); // b has just started one: its turn is spent, the cursor stays until the next offer
  turns.sync(['b', 'c', 'd']);
  t.same(turns.order, ['b', 'c', 'd']);
});
