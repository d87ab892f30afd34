import { defineRoutes } from '../platform/api/route.js';
import { pageOf } from '../platform/api/schemas.js';
import type { Operations } from '../platform/api/types.js';
import { pageRequest } from '../platform/api/pagination.js';
import * as s from './model.js';
import { AuditRepository, type AuditPosition } from './repo.js';

/** The audit log, read by `audit:read`; served by the `auth` function. */
export const auditRoutes = defineRoutes([
  {
    operationId: 'listAuditLogs',
    method: 'GET',
    path: '/api/v1/audit-logs',
    group: 'auth',
    permission: 'audit:read',
    summary: 'Audit log: every mutating request, with filters and cursor pagination (newest first)',
    tags: ['Audit & Compliance'],
    query: s.auditQuery,
    response: pageOf(s.auditView),
  },
]);

export const auditOperations: Operations<typeof auditRoutes> = {
  async listAuditLogs(req) {
    const { limit, cursor: _cursor, from, to, ...filter } = req.query;
    const { startKey, respond } = await pageRequest(req, 'audit', { ...filter, from, to });
    const range = { from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined };
    const page = await new AuditRepository(req.deps.store).list({ ...filter, ...range }, limit, startKey as AuditPosition | undefined, req.deps.clock.now());
    return { data: respond({ items: page.items, lastKey: page.next }) };
  },
};
