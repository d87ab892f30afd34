/**
 * The workflow-run state machine, as one Amazon States Language document (JSONPath). CDK deploys it;
 * the local runtime runs the very same document with aws-local-stepfunctions, binding the Lambda
 * task to the local engine handler.
 *
 * The engine is a loop: `Advance` looks at the execution in the table, starts every step whose
 * dependencies are done (within max_parallel), records finished steps, and answers whether the run is
 * over and how long to wait before looking again.
 */
export interface WorkflowAslOptions {
  /** ARN of the workflow engine Lambda (locally any ARN; the local runner binds it). */
  engineFunctionArn: string;
}

export const ENGINE_TASK_STATE = 'Advance';

export function buildWorkflowDefinition({ engineFunctionArn }: WorkflowAslOptions): Record<string, unknown> {
  return {
    Comment: 'Supervisor workflow execution: advance the DAG until it is finished',
    QueryLanguage: 'JSONPath',
    StartAt: ENGINE_TASK_STATE,
    States: {
      [ENGINE_TASK_STATE]: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Parameters: {
          FunctionName: engineFunctionArn,
          'Payload.$': '$',
        },
        ResultSelector: {
          'execution_id.$': '$.Payload.execution_id',
          'workflow_id.$': '$.Payload.workflow_id',
          'done.$': '$.Payload.done',
          'status.$': '$.Payload.status',
          'wait_seconds.$': '$.Payload.wait_seconds',
        },
        Retry: [
          {
            ErrorEquals: ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException', 'States.TaskFailed'],
            IntervalSeconds: 1,
            MaxAttempts: 5,
            BackoffRate: 2,
          },
        ],
        Next: 'IsDone',
      },
      IsDone: {
        Type: 'Choice',
        Choices: [{ Variable: '$.done', BooleanEquals: true, Next: 'Finished' }],
        Default: 'WaitForSteps',
      },
      WaitForSteps: {
        Type: 'Wait',
        SecondsPath: '$.wait_seconds',
        Next: ENGINE_TASK_STATE,
      },
      Finished: { Type: 'Succeed' },
    },
  };
}
