import type { Models } from '@pds/shared';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on routes that change something: recorded in the audit collection as `<target>.<verb>`. */
    action?: string;
  }
  interface FastifyRequest {
    /** The id of what the request acted on, when it is not the route's `:id` (a created resource). */
    auditTarget?: string;
    /** The tenant of what it acted on (a platform admin's change to a tenant's object); else the caller's. */
    auditTenant?: string;
    /** A read that is audited only when it asks for more (secrets shown): its action, set by the handler. */
    auditAction?: string;
  }
}

/**
 * Records every change made through the API (who, what, on what, when, outcome) once its answer
 * is sent. Refusals with 403 are recorded too; 401s are not, as they have no "who".
 */
export const auditPlugin = fp<{ models: Pick<Models, 'AuditEntry'> }>(
  async (app, { models }) => {
    app.decorateRequest('auditTarget', undefined);
    app.decorateRequest('auditTenant', undefined);
    app.decorateRequest('auditAction', undefined);
    app.decorateRequest('auditFailure', undefined);
    app.addHook('onResponse', async (request, reply) => {
      const action = request.auditAction ?? request.routeOptions.config.action;
      if (!action || !request.principal) return;
      const params = request.params as { id?: string } | undefined;
      const failed = reply.statusCode >= 400;
      try {
        await models.AuditEntry.create({
          actor: request.principal,
          action,
          tenantId: request.auditTenant ?? request.principal.tenant,
          targetId: request.auditTarget ?? params?.id,
          outcome: failed ? 'failure' : 'success',
          statusCode: reply.statusCode,
          message: failed ? request.auditFailure : undefined,
          requestId: request.id,
        });
      } catch (err) {
        // The change itself is done; losing its audit entry is logged loudly rather than undoing it.
        request.log.error({ err, action }, 'audit entry could not be written');
      }
    });
  },
  { name: 'audit' },
);
