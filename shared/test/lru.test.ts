import t from 'tap';
import { LruCache } from '../src/lru.js';

t.test('an LRU cache keeps the most recently used entries within its capacity', async (t) => {
  const cache = new LruCache<string, string>(2);
  cache.set('a', 'A');
  cache.set('b', 'B');
  t.equal(cache.get('a'), 'A');
  cache.set('c', 'C');
  t.equal(cache.get('b'), undefined, 'the least recently used went');
  t.equal(cache.get('a'), 'A');
  t.equal(cache.get('c'), 'C');
  t.equal(cache.size, 2);
  cache.set('c', 'C2');
  t.equal(cache.size, 2, 'setting a key again does not grow it');
  cache.delete('a');
  t.equal(cache.get('a'), undefined);
});
