/**
 * The mangled request forms the access tests send to every route: each turns a route's real path
 * (`/v1/resources/abc`) into a request target. A new way to dress a path is one line here.
 * `absolute` forms are sent as absolute-form targets (`GET http://host/path HTTP/1.1`) over a raw socket.
 */
export interface MangledForm {
  name: string;
  target(path: string, adminToken: string): string;
}

const encodeChar = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
const upperEncodeChar = (c: string) => encodeChar(c).toUpperCase();

export const MANGLED_FORMS: MangledForm[] = [
  { name: 'as is', target: (p) => p },
  { name: 'percent-encoded v', target: (p) => p.replace('/v1', '/%761') },
  { name: 'percent-encoded V (upper hex)', target: (p) => p.replace('/v1', '/%761'.toUpperCase()) },
  { name: 'every character of the first segment encoded', target: (p) => p.replace('/v1', `/${[...'v1'].map(encodeChar).join('')}`) },
  {
    name: 'a letter of the second segment encoded',
    target: (p) => p.replace(/^\/v1\/(\w)/, (_m, c: string) => `/v1/${upperEncodeChar(c)}`),
  },
  { name: 'encoded slash', target: (p) => p.replace('/v1/', '/v1%2F') },
  { name: 'upper case', target: (p) => p.toUpperCase() },
  { name: 'capitalised prefix', target: (p) => p.replace('/v1', '/V1') },
  { name: 'leading double slash', target: (p) => `/${p}` },
  { name: 'inner double slash', target: (p) => p.replace('/v1/', '/v1//') },
  { name: 'trailing slash', target: (p) => `${p}/` },
  { name: 'dot segment', target: (p) => p.replace('/v1/', '/v1/./') },
  { name: 'dot-dot segment', target: (p) => p.replace('/v1/', '/v1/x/../') },
  { name: 'semicolon parameter', target: (p) => `${p};x=1` },
  { name: 'semicolon in the first segment', target: (p) => p.replace('/v1', '/v1;x=1') },
  { name: 'empty query', target: (p) => `${p}?` },
  { name: 'token in the query string (not a way in)', target: (p, admin) => `${p}?token=${encodeURIComponent(admin)}` },
  { name: 'fragment', target: (p) => `${p}#x` },
  { name: 'absolute form', target: (p) => `http://localhost${p}` },
  { name: 'absolute form, other host', target: (p) => `http://internal.example${p}` },
  { name: 'absolute form, encoded', target: (p) => `http://localhost${p.replace('/v1', '/%761')}` },
  { name: 'absolute form, double slash', target: (p) => `http://localhost/${p}` },
];

/** Methods sent to each path besides its own. */
export const EXTRA_METHODS = ['HEAD', 'OPTIONS'];
