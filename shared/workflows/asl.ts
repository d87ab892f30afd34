/**
 * The workflow-run state machine, as one Amazon States Language document (JSONPath). CDK deploys it;
 * the local runtime runs the very same document with aws-local-stepfunctions, binding the Lambda
 * tasks to the local engine handler.
 *
 * `Advance` (lambda:invoke.waitForTaskToken) looks at the execution in the table, starts every step
 * whose dependencies are done (within max_parallel) and records finished steps. When steps are running
 * it stores the task token on the execution and the state waits: the first step task to reach a
 * terminal state sends the token back (SendTaskSuccess) and the run advances at once. Otherwise the
 * engine answers the token itself: done, or how long to wait (a retry's backoff) in the Wait state.
 * A lost callback cannot hang a run: the wait is capped by `callback_seconds` (at most
 * CALLBACK_SECONDS, never past the run's timeout), after which `Advance` runs again. An engine that
 * keeps failing ends in `RecordFailure`, which marks the run failed with the cause.
 *
 * History (Step Functions keeps 25 000 events): an Advance round is 8 events (Task entered, scheduled,
 * started, submitted, succeeded, exited; Choice entered, exited), plus 2 for a Wait; a round happens
 * per finished step attempt and per lost-callback timeout, not per poll (see
 * test/unit/workflows/history.test.ts).
 */
export interface WorkflowAslOptions {
  /** ARN of the workflow engine Lambda (locally any ARN; the local runner binds it). */
  engineFunctionArn: string;
}

export const ENGINE_TASK_STATE = 'Advance';
export const FAILURE_TASK_STATE = 'RecordFailure';
/** Longest wait for a step callback before the engine looks again by itself. */
export const CALLBACK_SECONDS = 600;
/** The error name the engine fails its own task with (SendTaskFailure); retried like Lambda errors. */
export const ENGINE_ERROR = 'Engine.Error';

export function buildWorkflowDefinition({ engineFunctionArn }: WorkflowAslOptions): Record<string, unknown> {
  return {
    Comment: 'Supervisor workflow execution: advance the DAG until it is finished',
    QueryLanguage: 'JSONPath',
    StartAt: 'Start',
    States: {
      Start: {
        Type: 'Pass',
        Result: CALLBACK_SECONDS,
        ResultPath: '$.callback_seconds',
        Next: ENGINE_TASK_STATE,
      },
      [ENGINE_TASK_STATE]: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
        Parameters: {
          FunctionName: engineFunctionArn,
          Payload: {
            'execution_id.$': '$.execution_id',
            'workflow_id.$': '$.workflow_id',
            'callback_seconds.$': '$.callback_seconds',
            'task_token.$': '$$.Task.Token',
          },
        },
        TimeoutSecondsPath: '$.callback_seconds',
        ResultSelector: {
          'execution_id.$': '$.execution_id',
          'workflow_id.$': '$.workflow_id',
          'done.$': '$.done',
          'status.$': '$.status',
          'wait_seconds.$': '$.wait_seconds',
          'callback_seconds.$': '$.callback_seconds',
        },
        Retry: [
          {
            ErrorEquals: [ENGINE_ERROR, 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException', 'States.TaskFailed'],
            IntervalSeconds: 1,
            MaxAttempts: 5,
            BackoffRate: 2,
          },
        ],
        Catch: [
          // No callback within callback_seconds: look again (the input is kept).
          { ErrorEquals: ['States.Timeout'], ResultPath: null, Next: 'CallbackTimedOut' },
          { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: FAILURE_TASK_STATE },
        ],
        Next: 'IsDone',
      },
      CallbackTimedOut: { Type: 'Pass', Result: CALLBACK_SECONDS, ResultPath: '$.callback_seconds', Next: ENGINE_TASK_STATE },
      IsDone: {
        Type: 'Choice',
        Choices: [
          { Variable: '$.done', BooleanEquals: true, Next: 'Finished' },
          { Variable: '$.wait_seconds', NumericGreaterThan: 0, Next: 'WaitForSteps' },
        ],
        Default: ENGINE_TASK_STATE,
      },
      WaitForSteps: {
        Type: 'Wait',
        SecondsPath: '$.wait_seconds',
        Next: ENGINE_TASK_STATE,
      },
      [FAILURE_TASK_STATE]: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Parameters: {
          FunctionName: engineFunctionArn,
          Payload: {
            'execution_id.$': '$.execution_id',
            'workflow_id.$': '$.workflow_id',
            'failure.$': '$.failure',
          },
        },
        ResultPath: null,
        Retry: [
          {
            ErrorEquals: ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException', 'States.TaskFailed'],
            IntervalSeconds: 2,
            MaxAttempts: 6,
            BackoffRate: 2,
          },
        ],
        Next: 'EngineFailed',
      },
      EngineFailed: { Type: 'Fail', Error: 'EngineFailed', Cause: 'the workflow engine kept failing; the run was marked failed' },
      Finished: { Type: 'Succeed' },
    },
  };
}
