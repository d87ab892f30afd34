import * as z from 'zod';
import { newUlid } from '../platform/ids.js';
import { defineRoutes } from '../platform/api/route.js';
import { pageOf } from '../platform/api/schemas.js';
import type { Operations } from '../platform/api/types.js';
import { pageRequest } from '../platform/api/pagination.js';
import * as s from './model.js';
import * as plugins from './service.js';

const tags = ['Plugin Management'];
const group = 'plugins' as const;
const resourceType = 'plugin';

/** Plugins (a fixed built-in catalog), their events and notifications: the `plugins` function. */
export const pluginRoutes = defineRoutes([
  {
    operationId: 'listPlugins',
    method: 'GET',
    path: '/api/v1/plugins',
    group,
    permission: 'plugins:read',
    summary: 'List the discovered plugins, optionally by type and status',
    tags,
    query: s.listPluginsQuery,
    response: z.object({ items: z.array(s.pluginView) }),
  },
  {
    operationId: 'discoverPlugins',
    method: 'POST',
    path: '/api/v1/plugins/discover',
    group,
    permission: 'plugins:manage',
    summary: 'Discover the built-in plugins (idempotent: known ones are left as they are)',
    description: 'Stores every built-in plugin (webhook, slack, github, email) not known yet, or unloaded, as `discovered`. No code is loaded at run time.',
    tags,
    response: s.discoverView,
    resourceType,
  },
  {
    operationId: 'getPluginMetrics',
    method: 'GET',
    path: '/api/v1/plugins/metrics',
    group,
    permission: 'plugins:read',
    summary: 'Per plugin: deliveries, failures, success rate, p50/p95 latency and last error, from the stored delivery history',
    tags,
    response: s.metricsView,
  },
  {
    operationId: 'getAllPluginsHealth',
    method: 'GET',
    path: '/api/v1/plugins/health/all',
    group,
    permission: 'plugins:read',
    summary: 'Health checks of every plugin, run concurrently',
    tags,
    response: s.allHealthView,
  },
  {
    operationId: 'listPluginsByType',
    method: 'GET',
    path: '/api/v1/plugins/types/{plugin_type}',
    group,
    permission: 'plugins:read',
    summary: 'The discovered plugins of one type (422 for an unknown type)',
    tags,
    params: s.pluginTypeParams,
    response: z.object({ plugin_type: z.string(), items: z.array(s.pluginView) }),
  },
  {
    operationId: 'publishPluginEvent',
    method: 'POST',
    path: '/api/v1/plugins/events/publish',
    group,
    permission: 'plugins:publish',
    summary: 'Publish a custom event on the event bus; active plugins whose filter matches receive it',
    description: 'Honours `Idempotency-Key` (the event id is bound to the key). Event types the platform publishes itself (task.completed, …) are refused.',
    tags,
    body: s.publishBody,
    response: s.publishView,
    status: 202,
    maxBodyBytes: 256 * 1024,
    idempotent: true,
    resourceType: 'plugin_event',
  },
  {
    operationId: 'getPluginEventHistory',
    method: 'GET',
    path: '/api/v1/plugins/events/history',
    group,
    permission: 'plugins:read',
    summary: 'Delivery history, newest first: per event and plugin, status, attempts with status code, response excerpt and duration',
    tags,
    query: s.historyQuery,
    response: pageOf(s.deliveryView),
  },
  {
    operationId: 'redeliverPluginEvent',
    method: 'POST',
    path: '/api/v1/plugins/events/{event_id}/redeliver',
    group,
    permission: 'plugins:publish',
    summary: 'Deliver a stored event again, now (one manual attempt per plugin, recorded in the history)',
    tags,
    params: s.eventIdParams,
    body: s.redeliverBody,
    response: s.redeliverView,
    resourceType: 'plugin_event',
    resourceIdParam: 'event_id',
  },
  {
    operationId: 'sendPluginNotification',
    method: 'POST',
    path: '/api/v1/plugins/notifications/send',
    group,
    permission: 'plugins:publish',
    summary: 'Send a notification through an active notification plugin; the answer is its delivery record',
    tags,
    body: s.notificationBody,
    response: s.deliveryView,
    idempotent: true,
    resourceType: 'plugin_notification',
  },
  {
    operationId: 'getPlugin',
    method: 'GET',
    path: '/api/v1/plugins/{plugin_name}',
    group,
    permission: 'plugins:read',
    summary: 'A plugin: metadata, configuration schema, status and health',
    tags,
    params: s.pluginNameParams,
    response: s.pluginView,
  },
  {
    operationId: 'activatePlugin',
    method: 'POST',
    path: '/api/v1/plugins/{plugin_name}/activate',
    group,
    permission: 'plugins:manage',
    summary: 'Activate a configured plugin (loaded, inactive or error → active); 409 when another change won',
    tags,
    params: s.pluginNameParams,
    response: s.pluginView,
    resourceType,
    resourceIdParam: 'plugin_name',
  },
  {
    operationId: 'deactivatePlugin',
    method: 'POST',
    path: '/api/v1/plugins/{plugin_name}/deactivate',
    group,
    permission: 'plugins:manage',
    summary: 'Deactivate a plugin (active or error → inactive); 409 when another change won',
    tags,
    params: s.pluginNameParams,
    response: s.pluginView,
    resourceType,
    resourceIdParam: 'plugin_name',
  },
  {
    operationId: 'unloadPlugin',
    method: 'DELETE',
    path: '/api/v1/plugins/{plugin_name}',
    group,
    permission: 'plugins:manage',
    summary: 'Unload a plugin: its configuration and secrets are removed; discover brings it back',
    tags,
    params: s.pluginNameParams,
    response: s.pluginView,
    resourceType,
    resourceIdParam: 'plugin_name',
  },
  {
    operationId: 'getPluginHealth',
    method: 'GET',
    path: '/api/v1/plugins/{plugin_name}/health',
    group,
    permission: 'plugins:read',
    summary: 'Check a plugin now: its endpoint answers within a short timeout, its credentials where cheap',
    description: 'The third failed check in a row puts an active plugin in `error`.',
    tags,
    params: s.pluginNameParams,
    response: s.healthCheckView,
  },
  {
    operationId: 'getPluginConfiguration',
    method: 'GET',
    path: '/api/v1/plugins/{plugin_name}/configuration',
    group,
    permission: 'plugins:manage',
    summary: 'The configuration, secrets masked, with its JSON Schema',
    tags,
    params: s.pluginNameParams,
    response: s.configurationView,
  },
  {
    operationId: 'updatePluginConfiguration',
    method: 'PUT',
    path: '/api/v1/plugins/{plugin_name}/configuration',
    group,
    permission: 'plugins:manage',
    summary: "Replace the configuration, validated against the plugin's schema (422 naming each field); secrets go to the secret store",
    tags,
    params: s.pluginNameParams,
    body: s.configurationBody,
    response: s.configurationView,
    maxBodyBytes: 32 * 1024,
    resourceType,
    resourceIdParam: 'plugin_name',
  },
]);

export const pluginOperations: Operations<typeof pluginRoutes> = {
  async listPlugins(req) {
    return { data: { items: (await plugins.listPlugins(req.deps, req.query)).map(plugins.pluginView) } };
  },

  async discoverPlugins(req) {
    const out = await plugins.discover(req.deps);
    req.audit.details = { discovered: out.discovered };
    return { data: { discovered: out.discovered, plugins: out.plugins.map(plugins.pluginView) }, message: `${out.discovered.length} plugin(s) discovered` };
  },

  async getPluginMetrics(req) {
    return { data: await plugins.metrics(req.deps) };
  },

  async getAllPluginsHealth(req) {
    return { data: await plugins.checkAll(req.deps, req.principal) };
  },

  async listPluginsByType(req) {
    const items = await plugins.listPlugins(req.deps, { type: req.params.plugin_type });
    return { data: { plugin_type: req.params.plugin_type, items: items.map(plugins.pluginView) } };
  },

  async publishPluginEvent(req) {
    const eventId = req.idempotency?.resourceId ?? newUlid();
    req.audit.resourceId = eventId;
    req.audit.details = { event_type: req.body.event_type, target_plugin: req.body.target_plugin ?? null };
    return { data: await plugins.publishEvent(req.deps, req.body, eventId), message: 'Event published', status: 202 };
  },

  async getPluginEventHistory(req) {
    const { limit, cursor: _cursor, ...filter } = req.query;
    const { startKey, respond } = await pageRequest(req, 'plugin-deliveries', filter);
    return { data: respond(await plugins.history(req.deps, filter, limit, startKey)) };
  },

  async redeliverPluginEvent(req) {
    const deliveries = await plugins.redeliver(req.deps, req.params.event_id, req.body?.plugin_name);
    return { data: { event_id: req.params.event_id, deliveries }, message: `${deliveries.length} delivery attempt(s) made` };
  },

  async sendPluginNotification(req) {
    const eventId = req.idempotency?.resourceId ?? newUlid();
    req.audit.resourceId = eventId;
    req.audit.details = { plugin_name: req.body.plugin_name, priority: req.body.priority };
    const delivery = await plugins.notify(req.deps, req.body, eventId);
    return { data: delivery, message: delivery.status === 'succeeded' ? 'Notification sent' : 'Notification not delivered yet' };
  },

  async getPlugin(req) {
    return { data: plugins.pluginView(await plugins.getPlugin(req.deps, req.params.plugin_name)) };
  },

  async activatePlugin(req) {
    return { data: plugins.pluginView(await plugins.transition(req.deps, req.params.plugin_name, 'activate')), message: 'Plugin activated' };
  },

  async deactivatePlugin(req) {
    return { data: plugins.pluginView(await plugins.transition(req.deps, req.params.plugin_name, 'deactivate')), message: 'Plugin deactivated' };
  },

  async unloadPlugin(req) {
    return { data: plugins.pluginView(await plugins.transition(req.deps, req.params.plugin_name, 'unload')), message: 'Plugin unloaded' };
  },

  async getPluginHealth(req) {
    return { data: await plugins.checkHealth(req.deps, req.params.plugin_name, req.principal) };
  },

  async getPluginConfiguration(req) {
    return { data: plugins.configurationOf(await plugins.getPlugin(req.deps, req.params.plugin_name)) };
  },

  async updatePluginConfiguration(req) {
    const p = await plugins.configure(req.deps, req.params.plugin_name, req.body.configuration);
    req.audit.details = { fields: Object.keys(req.body.configuration).sort() };
    return { data: plugins.configurationOf(p), message: 'Configuration updated' };
  },
};
