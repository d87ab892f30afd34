import { Logger } from '@aws-lambda-powertools/logger';

/** Powertools logger: JSON lines on AWS; the local runtime prints its own per-request line. */
export const logger = new Logger({
  serviceName: 'supervisor',
  logLevel: (process.env.LOG_LEVEL as 'INFO' | 'WARN' | 'ERROR' | 'DEBUG' | undefined) ?? 'INFO',
});
