import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, StreamViewType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus } from 'aws-cdk-lib/aws-events';
import { Key, KeySpec, KeyUsage } from 'aws-cdk-lib/aws-kms';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { SHARED_FILES, TABLE } from '../../shared/platform/infra.js';
import { acknowledge } from '../nag.js';
import { stackInstanceSuffix, type StageConfig } from '../stage.js';

export interface SupervisorDataProps {
  readonly stageConfig: StageConfig;
}

/**
 * What the stage stores and signs with: the DynamoDB single table (keys, GSIs and TTL attribute from
 * `TABLE` of `shared/platform/infra.ts`, which the local runtime creates too), the KMS key that signs
 * access tokens, the generated application secret, the prefix of provider secrets and the event bus.
 *
 * Resources are created in the given scope (the stack) so that their logical ids stay those of the
 * stack's direct children.
 */
export class SupervisorData {
  readonly table: Table;
  readonly eventBus: EventBus;
  readonly signingKey: Key;
  readonly appSecret: Secret;
  /** `supervisor/<stage>/providers/`: provider and agent credentials, one secret each, made at run time. */
  readonly secretPrefix: string;
  /** Files handed out by presigned URL (exports too large for an answer): private, encrypted, TLS only, kept a day. */
  readonly filesBucket: Bucket;

  constructor(scope: Construct, props: SupervisorDataProps) {
    const { stage, isProd } = props.stageConfig;
    const dataRemoval = isProd ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.table = new Table(scope, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TABLE.ttlAttribute,
      // The change feed (TABLE.stream): consumed by the change-feed function.
      stream: StreamViewType.NEW_AND_OLD_IMAGES,
      deletionProtection: isProd,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of TABLE.indexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
      });
    }

    this.eventBus = new EventBus(scope, 'EventBus', { eventBusName: `supervisor-${stage}` });

    this.signingKey = new Key(scope, 'TokenSigningKey', {
      description: `Supervisor ${stage}: signs access tokens (ES256)`,
      keySpec: KeySpec.ECC_NIST_P256,
      keyUsage: KeyUsage.SIGN_VERIFY,
      alias: `alias/supervisor-${stage}-token-signing`,
      removalPolicy: dataRemoval,
      pendingWindow: Duration.days(7),
    });

    this.appSecret = new Secret(scope, 'AppSecret', {
      // Retained in production-like stages: the suffix keeps a re-created stack from colliding with it.
      secretName: `supervisor/${stage}/app-${stackInstanceSuffix(scope)}`,
      description: `Supervisor ${stage}: key for signing pagination cursors and other HMACs`,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: dataRemoval,
    });
    acknowledge(
      this.appSecret,
      'AwsSolutions-SMG4',
      'The application secret keys HMACs of short-lived pagination cursors; rotating it only invalidates open cursors, ' +
        'so it is rotated manually (put-secret-value) rather than by a rotation Lambda.',
    );
    this.secretPrefix = `supervisor/${stage}/providers/`;

    this.filesBucket = new Bucket(scope, 'SharedFilesBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [{ id: 'expire-shared-files', expiration: Duration.days(SHARED_FILES.keepDays), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      // Nothing in it outlives a day: an emptied bucket is removed with the stack (a non-empty one fails the delete and is kept).
      removalPolicy: isProd ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    acknowledge(
      this.filesBucket,
      'AwsSolutions-S1',
      'The bucket holds exports for a day, reached only through presigned URLs that the analytics-advanced function hands out; ' +
        'every export is already audited (who, what, size) in the audit log, so server access logs would duplicate it.',
    );
  }
}
