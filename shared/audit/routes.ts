import { defineRoutes } from '../platform/api/route.js';
import { pageOf } from '../platform/api/schemas.js';
import type { Operations } from '../platform/api/types.js';
import { decodeCursor, encodeCursor } from '../platform/api/pagination.js';
import * as s from './model.js';
import { AuditRepository } from './repo.js';

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
    const { limit, cursor, from, to, ...filter } = req.query;
    const secret = await req.deps.appSecret();
    const scope = `audit:${JSON.stringify({ ...filter, from, to })}`;
    const position = decodeCursor(cursor, scope, secret) as { month?: string; key?: Record<string, unknown> } | undefined;
    const page = await new AuditRepository(req.deps.store).list(
      { ...filter, from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined },
      limit,
      position,
      req.deps.clock.now(),
    );
    return { data: { items: page.items, next_cursor: encodeCursor(page.next, scope, secret) } };
  },
};
