import { errors } from '@pds/shared';

/** Where the next page starts: the sort key of the last item returned. */
interface Cursor {
  at: string;
  id: string;
}

export function encodeCursor(at: Date, id: string): string {
  return Buffer.from(JSON.stringify({ at: at.toISOString(), id } satisfies Cursor)).toString('base64url');
}

/** A cursor this API returned: the sort key (`at`, ISO) and id of the last item of the previous page. */
export function decodeCursor(cursor: string): Cursor {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Cursor;
    if (typeof value.at === 'string' && typeof value.id === 'string' && !Number.isNaN(Date.parse(value.at))) return value;
  } catch {
    // answered below
  }
  throw errors.invalidRequest('cursor: not a cursor this API returned (pass nextCursor from the previous page as is)');
}

/** A page of a list and, when there is more, the cursor of the next page. */
export interface Page<V> {
  items: V[];
  nextCursor?: string;
}

/**
 * Reads one page of a newest-first list by keyset pagination on (`field`, `_id`): stable while
 * items are added, no skip. `find(condition, n)` returns up to n matching documents sorted by
 * `field` then `_id`, both descending; one more than `limit` is asked for to learn whether a next page exists.
 * The condition holds a top-level `$or`: a filter that has one too must be combined with `$and`, not spread.
 */
export async function readPage<T extends { _id: string }, V>(
  find: (condition: Record<string, unknown>, n: number) => Promise<T[]>,
  { field, limit, cursor }: { field: 'createdAt' | 'at'; limit: number; cursor?: string },
  view: (doc: T) => V,
): Promise<Page<V>> {
  let condition: Record<string, unknown> = {};
  if (cursor) {
    const { at, id } = decodeCursor(cursor);
    const date = new Date(at);
    condition = { $or: [{ [field]: { $lt: date } }, { [field]: date, _id: { $lt: id } }] };
  }
  const docs = await find(condition, limit + 1);
  const shown = docs.slice(0, limit);
  const last = shown[shown.length - 1];
  const at = last && (last as unknown as Record<string, Date>)[field];
  return { items: shown.map(view), ...(docs.length > limit && last && at ? { nextCursor: encodeCursor(at, last._id) } : {}) };
}

/** What listPage needs of a model: a find, sorted, limited and read as plain documents. */
interface Listable {
  find(filter: Record<string, unknown>): {
    sort(order: Record<string, 1 | -1>): { limit(n: number): { lean<R>(): PromiseLike<R> } };
  };
}

/**
 * One page of a model's documents matching `filter`, newest first by (`field`, `_id`): the one
 * list query of the API (filter, sort, keyset page, view). A filter with its own `$or` is combined
 * with the cursor's by `$and` (spread together, one would replace the other).
 */
export function listPage<T extends { _id: string }, V>(
  model: Listable,
  filter: Record<string, unknown>,
  page: { field: 'createdAt' | 'at'; limit: number; cursor?: string },
  view: (doc: T) => V,
): Promise<Page<V>> {
  return readPage(
    (condition, n) =>
      Promise.resolve(
        model
          .find('$or' in filter && '$or' in condition ? { $and: [filter, condition] } : { ...filter, ...condition })
          .sort({ [page.field]: -1, _id: -1 })
          .limit(n)
          .lean<T[]>(),
      ),
    page,
    view,
  );
}
