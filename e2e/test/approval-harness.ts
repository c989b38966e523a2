import { startStack } from './harness.js';

/** Whether a job has ended (it is in none of the states before its end). */
export const hasEnded = (d: { status: string }) => !['queued', 'awaiting_approval', 'approved', 'running'].includes(d.status);

/** A running system, a caller (the platform admin's token unless another is given), and an approver's token. */
export async function gatedStack(t: Parameters<typeof startStack>[0]) {
  const stack = await startStack(t);
  const call = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: object, token?: string) =>
    stack.api.inject({
      method,
      url,
      headers: token ? { authorization: `Bearer ${token}` } : stack.auth,
      ...(payload ? { payload } : {}),
    });
  const approver = (await call('POST', '/v1/tokens', { name: 'approver', role: 'admin' })).json().token as string;
  return { stack, call, approver };
}
