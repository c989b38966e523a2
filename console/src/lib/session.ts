import { Store } from './store.js';

/** Who is signed in (GET /v1/whoami). */
export interface Me {
  id: string;
  name: string;
  role: 'viewer' | 'deployer' | 'admin' | 'platform';
  tenant?: string;
}

export type Role = Me['role'];

const TOKEN_KEY = 'pds.token';
const RANK: Record<Role, number> = { viewer: 0, deployer: 1, admin: 2, platform: 3 };

interface SessionState {
  me?: Me;
  /** Why the person is at the sign-in page (a token that stopped working, a sign-out). */
  reason?: string;
}

/**
 * The signed-in token, for this browser tab only (sessionStorage: closed with the tab, never in a
 * URL or a cookie), and who it is.
 */
export const session = new Store<SessionState>({});

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(value: string, me: Me): void {
  sessionStorage.setItem(TOKEN_KEY, value);
  session.set({ me });
}

export function signOut(reason?: string): void {
  sessionStorage.removeItem(TOKEN_KEY);
  session.set(reason ? { reason } : {});
}

/** Whether the signed-in role may do what needs `needed` (viewer < deployer < admin < platform). */
export function can(me: Me | undefined, needed: Role): boolean {
  return me !== undefined && RANK[me.role] >= RANK[needed];
}
