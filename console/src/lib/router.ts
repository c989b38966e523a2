import { useEffect, useState } from 'preact/hooks';

/** Where the console is: `#/jobs/abc?status=failed` → { parts: ['jobs','abc'], query }. */
export interface Route {
  parts: string[];
  query: URLSearchParams;
}

function current(): Route {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path = '', search = ''] = hash.split('?', 2);
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(search) };
}

/** The current route; re-renders on every change of the URL's fragment. */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const onChange = () => setRoute(current());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

/** The fragment link for a path and query: href(['jobs', id], { line: 3 }). */
export function href(parts: string[], params: Record<string, string | number | undefined> = {}): string {
  const search = new URLSearchParams(
    Object.entries(params)
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => [k, String(v)]),
  ).toString();
  return `#/${parts.map(encodeURIComponent).join('/')}${search ? `?${search}` : ''}`;
}

export function navigate(to: string): void {
  location.hash = to;
}

/** Changes the query of the current page without a new history entry (filters, a line anchor). */
export function replaceQuery(params: Record<string, string | number | undefined>): void {
  const { parts } = current();
  history.replaceState(null, '', href(parts, params));
  dispatchEvent(new HashChangeEvent('hashchange'));
}
