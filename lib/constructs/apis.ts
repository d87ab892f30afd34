import type { ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';
import type { FunctionGroup } from '../../shared/platform/api/route.js';
import { FUNCTIONS } from '../../shared/platform/infra.js';
import type { Bindings } from '../bindings.js';
import type { ApiRoute } from '../routes.js';
import { routedGroups } from '../routes.js';
import type { StageConfig } from '../stage.js';
import { SupervisorHttpApi } from './http-api.js';
import type { SupervisorFunction, SupervisorFunctions } from './supervisor-function.js';
import { SupervisorWebSocketApi, type WebSocketHandlers } from './websocket-api.js';

/**
 * Swagger UI files the docs function serves (`functions/docs/handler.ts`, ASSETS), copied from
 * swagger-ui-dist into its bundle, where `DOCS_ASSETS_DIR` points the handler at them.
 */
export const DOCS_ASSET_FILES = [
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'swagger-ui-standalone-preset.js',
  'favicon-32x32.png',
  'favicon-16x16.png',
  'LICENSE',
  'NOTICE',
];
export const DOCS_ASSETS_DIR = '/var/task/swagger-ui';

const copyDocsAssets: ICommandHooks = {
  beforeBundling: () => [],
  beforeInstall: () => [],
  afterBundling: (inputDir, outputDir) => [
    `mkdir -p "${outputDir}/swagger-ui"`,
    ...DOCS_ASSET_FILES.map((f) => `cp "${inputDir}/node_modules/swagger-ui-dist/${f}" "${outputDir}/swagger-ui/${f}"`),
  ],
};

const SYNC_NO_DLQ =
  'Invoked synchronously (API Gateway request/response); errors go back to the caller, and a Lambda DLQ only ' +
  'applies to asynchronous invocations.';
const WS_NO_DLQ = 'Invoked synchronously by the API Gateway WebSocket API; a Lambda DLQ only applies to asynchronous invocations.';

export interface SupervisorApisProps {
  readonly stageConfig: StageConfig;
  /** The API Gateway routes (`apiRoutes` of the route table). */
  readonly routes: readonly ApiRoute[];
  readonly functions: SupervisorFunctions;
  /** Create the account-level API Gateway CloudWatch role WebSocket logging needs. */
  readonly createApiGatewayAccountRole: boolean;
}

/**
 * The HTTP API with one function per group that owns routes (`functions/<group>/handler.ts`), and the
 * WebSocket API with its authorizer, connect, disconnect and message functions (`functions/ws`).
 *
 * Functions are created in the given scope (the stack) so that their logical ids stay those of the
 * stack's direct children; each API is its own construct (`Http`, `WebSocket`).
 */
export class SupervisorApis {
  readonly httpApi: SupervisorHttpApi;
  readonly webSocketApi: SupervisorWebSocketApi;
  /** The function of each group that owns routes. */
  readonly groupFunctions = new Map<FunctionGroup, SupervisorFunction>();
  readonly ws: Record<keyof WebSocketHandlers, SupervisorFunction>;

  constructor(scope: Construct, props: SupervisorApisProps) {
    const { stageConfig, functions } = props;
    const { stage } = stageConfig;

    this.webSocketApi = new SupervisorWebSocketApi(scope, 'WebSocket', {
      stageConfig,
      createAccountLogsRole: props.createApiGatewayAccountRole,
    });

    for (const group of routedGroups(props.routes)) {
      this.groupFunctions.set(
        group,
        functions.add(`${pascal(group)}Function`, {
          name: group,
          description: `Supervisor ${stage}: ${group} API`,
          limits: FUNCTIONS.api,
          noDlqReason: SYNC_NO_DLQ,
          ...(group === 'docs'
            ? { environment: { DOCS_ASSETS_DIR }, bundling: { commandHooks: copyDocsAssets } }
            : {}),
        }),
      );
    }

    this.ws = {
      authorizer: functions.add('WsAuthorizerFunction', { name: 'ws', handler: 'authorizer', limits: FUNCTIONS.wsAuthorizer, noDlqReason: WS_NO_DLQ }),
      connect: functions.add('WsConnectFunction', { name: 'ws', handler: 'connect', limits: FUNCTIONS.api, noDlqReason: WS_NO_DLQ }),
      disconnect: functions.add('WsDisconnectFunction', { name: 'ws', handler: 'disconnect', limits: FUNCTIONS.api, noDlqReason: WS_NO_DLQ }),
      message: functions.add('WsMessageFunction', { name: 'ws', handler: 'message', limits: FUNCTIONS.api, noDlqReason: WS_NO_DLQ }),
    };

    this.httpApi = new SupervisorHttpApi(scope, 'Http', { stageConfig, routes: props.routes, functions: this.groupFunctions });
    this.webSocketApi.addHandlers(this.ws);
  }

  /** What each API group's function and the WebSocket functions may use. */
  bind(bind: Bindings): void {
    for (const [group, f] of this.groupFunctions) {
      bind.table(f, group === 'docs' ? 'RO' : 'RW');
      bind.signingKey(f, group === 'auth' ? 'sign' : 'verify');
      bind.appSecret(f);
    }
    const api = (group: FunctionGroup, use: (f: SupervisorFunction) => void): void => {
      const f = this.groupFunctions.get(group);
      if (f) use(f);
    };
    api('tasks', (f) => {
      bind.stepCallbacks(f);
      bind.queue(f, 'send');
      bind.eventBus(f);
      // The agents routes (group `tasks`) store, replace and remove agents' API keys.
      bind.providerSecrets(f, 'manage');
    });
    api('workflows', (f) => {
      bind.stepCallbacks(f);
      bind.stateMachine(f, 'manage');
      bind.scheduler(f, 'manage');
      bind.queue(f, 'send');
    });
    api('providers', (f) => {
      bind.stepCallbacks(f);
      bind.providerSecrets(f, 'manage');
      bind.queue(f, 'send');
    });
    api('plugins', (f) => bind.eventBus(f));
    api('monitoring', (f) => bind.eventBus(f));
    api('health', (f) => {
      bind.stateMachine(f, 'describe');
      bind.scheduler(f, 'check');
      bind.queue(f, 'check');
      bind.eventBus(f);
    });

    const { ws } = this;
    bind.table(ws.authorizer, 'RO');
    bind.signingKey(ws.authorizer, 'verify');
    bind.table(ws.connect, 'RW');
    bind.table(ws.disconnect, 'RW');
    bind.table(ws.message, 'RW');
  }
}

function pascal(name: string): string {
  return name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}
